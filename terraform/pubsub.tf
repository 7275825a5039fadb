# Usage topics (one per traffic kind), their dead-letter topics, and the alerts topic.

resource "google_pubsub_topic" "usage" {
  for_each                   = local.usage_functions
  name                       = each.value.topic
  message_retention_duration = var.usage_message_retention
  depends_on                 = [google_project_service.required]
}

resource "google_pubsub_topic" "usage_dead_letter" {
  for_each                   = local.usage_functions
  name                       = "${each.value.topic}-dead-letter"
  message_retention_duration = var.usage_message_retention
  depends_on                 = [google_project_service.required]
}

# Dead letters are kept on a pull subscription for inspection and replay (warp ops replay).
resource "google_pubsub_subscription" "usage_dead_letter" {
  for_each                   = local.usage_functions
  name                       = "${each.value.topic}-dead-letter-hold"
  topic                      = google_pubsub_topic.usage_dead_letter[each.key].id
  message_retention_duration = var.usage_message_retention
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic" "billing_alerts" {
  name       = "billing-alerts"
  depends_on = [google_project_service.required]
}

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Pub/Sub forwards undeliverable messages as its own service agent.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.usage_functions
  topic    = google_pubsub_topic.usage_dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_service_agent
}

# The dead-letter policy and the push retry backoff of each usage trigger's subscription.
# Eventarc owns that subscription (see main.tf), so it is set after every deploy of the
# function: a redeploy may recreate the subscription without the policy.
resource "terraform_data" "usage_dead_letter_policy" {
  for_each = local.usage_functions

  triggers_replace = [
    google_cloudfunctions2_function.usage[each.key].event_trigger[0].trigger,
    google_cloudfunctions2_function.usage[each.key].update_time,
    google_pubsub_topic.usage_dead_letter[each.key].id,
    var.max_delivery_attempts,
  ]

  input = {
    trigger              = google_cloudfunctions2_function.usage[each.key].event_trigger[0].trigger
    pubsub_service_agent = local.pubsub_service_agent
    dead_letter_policy = {
      dead_letter_topic     = google_pubsub_topic.usage_dead_letter[each.key].id
      max_delivery_attempts = var.max_delivery_attempts
    }
    retry_policy = {
      minimum_backoff = "10s"
      maximum_backoff = "600s"
    }
  }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      subscription=$(gcloud eventarc triggers describe "${self.input.trigger}" \
        --format='value(transport.pubsub.subscription)')
      gcloud pubsub subscriptions update "$subscription" \
        --dead-letter-topic="${self.input.dead_letter_policy.dead_letter_topic}" \
        --max-delivery-attempts=${self.input.dead_letter_policy.max_delivery_attempts} \
        --min-retry-delay=${self.input.retry_policy.minimum_backoff} \
        --max-retry-delay=${self.input.retry_policy.maximum_backoff}
      gcloud pubsub subscriptions add-iam-policy-binding "$subscription" \
        --member="${self.input.pubsub_service_agent}" --role=roles/pubsub.subscriber >/dev/null
    EOT
  }
}
