"""Cloud Function (gen2) `notify`: customer emails, reinstatement and HubSpot from billing-alerts and invoices.

Its push subscriptions deliver one message per CloudEvent: a billing alert, or an issued document
announced on the invoices topic. The work is in ``warp_billing.dunning``: low-balance,
suspension-pending, suspended and recharge-declined emails, payment receipts (the paid invoices'
PDFs attached) and, on ``payment_received``, the reinstatement of a customer suspended for
non-payment whose overdue balance is settled; an issued document updates the customer's HubSpot
company once (last invoice, balance due); a vendor_dispute_opened alert emails the dispute package
(letter.pdf, disputed-records.csv) to the address the reconciliation chose, once per alert; other
alert types are acknowledged untouched. A
retryable failure raises, so Pub/Sub redelivers (each email is sent once per (document, step)).
Clients are built on the first event, never at import.
"""

import functions_framework

from warp_billing.bootstrap import alert_handler
from warp_billing.dunning.delivery import handle_alert_event


@functions_framework.cloud_event
def notify(cloud_event):
    """Handle one billing alert; return to acknowledge, raise to have it redelivered."""
    handle_alert_event(cloud_event, alert_handler)
