# Firestore (native mode): customer plans by version and rate decks in chunks
# (warp_billing.adapters.firestore_plans).

resource "google_firestore_database" "default" {
  name                    = "(default)"
  location_id             = var.firestore_location
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "OPTIMISTIC"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"
  depends_on              = [google_project_service.required]
}

# One customer's ledger in order (warp_billing.adapters.firestore_ledger, WARP_LEDGER_STORE=firestore).
resource "google_firestore_index" "ledger_by_customer" {
  database   = google_firestore_database.default.name
  collection = "ledger_entries"

  fields {
    field_path = "customer_id"
    order      = "ASCENDING"
  }

  fields {
    field_path = "order_key"
    order      = "ASCENDING"
  }
}
