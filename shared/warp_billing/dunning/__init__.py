"""Collections (issue 12): the dunning ladder, suspension for non-payment, customer emails, HubSpot.

Pure core: the ports it needs are in ``ports.py`` (Receivables, DunningStore, AccountHolds,
EmailLog, Mailer, Crm, TaskQueue); the adapters are chosen in ``bootstrap.py``.
"""
