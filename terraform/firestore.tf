# Firestore (native mode): customer plans by version and rate decks in chunks
# (warp_billing.adapters.firestore_plans), and the billing functions' invoice register and ERP
# outbox. The prepaid ledger lives in BigQuery (balance_ledger), so no ledger index is declared here.

resource "google_firestore_database" "default" {
  name                    = "(default)"
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "OPTIMISTIC"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"
  depends_on              = [time_sleep.apis_ready]
}
