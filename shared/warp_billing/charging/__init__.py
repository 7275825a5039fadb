"""Real-time charging: the service layer between a usage event and the stores.

``service.ChargingService`` handles one delivered usage event (or a batch): maximum-age check,
rating with the shared core, prepaid debit or postpaid running total, the rated row, the ledger
entries and the alerts, each write idempotent by a business id so any redelivery is harmless.
"""
