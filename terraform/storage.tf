# Cloud Storage buckets the declared functions own (functions.tf `buckets`): invoice documents,
# vendor CDR drops (and the reconciliation outputs beside them). Writers hold objectCreator only
# (create, never overwrite or delete): documents are immutable once written.

locals {
  bucket_names = {
    documents   = "${var.project}-warp-documents"
    vendor_cdrs = "${var.project}-warp-vendor-cdrs"
  }

  owned_buckets = merge([for name, spec in local.functions : { for bucket in spec.buckets : bucket => name }]...)
}

resource "google_storage_bucket" "owned" {
  for_each                    = local.owned_buckets
  name                        = local.bucket_names[each.key]
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  depends_on = [time_sleep.apis_ready]
}
