"""The ERP (NetSuite) sync: issued documents from the outbox into NetSuite, each exactly once.

``mapping`` (versioned configuration: SKUs, fees, accounts, currencies, customer fields) and
``records`` (outbox document -> NetSuite record body) are pure; ``sync`` (one document per
task), ``enqueue`` (outbox -> task queue) and ``delivery`` (HTTP task -> outcome) are the
service layer over the ports in ``warp_billing.ports``.
"""
