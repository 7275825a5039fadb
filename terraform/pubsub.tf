# Usage topics (one per rating function), their dead-letter topics, one push subscription per
# usage topic, the alerts topic and the topics the functions own.
#
# The push subscription is this module's own (not Eventarc's), so its dead-letter policy, retry
# backoff, ack deadline and expiration are plain Terraform: no gcloud step after apply. It pushes
# the standard Pub/Sub JSON envelope ({"message": {...}, "subscription": ...}) with an OIDC token of
# warp-pubsub-push to the function's run.app URL (internal ingress accepts Pub/Sub push there);
# functions-framework turns that envelope into the same messagePublished CloudEvent the rating
# functions decode (tests/unit/charging/test_pubsub_push_envelope.py).

locals {
  pubsub_functions = { for name, spec in local.functions : name => spec if spec.trigger == "pubsub" }

  owned_topics = merge([for name, spec in local.functions : { for topic in spec.topics : topic => name }]...)

  topic_names = merge(
    { billing_alerts = google_pubsub_topic.billing_alerts.name },
    { for key, topic in google_pubsub_topic.owned : key => topic.name },
  )
}

resource "google_pubsub_topic" "usage" {
  for_each                   = local.pubsub_functions
  name                       = each.value.topic
  message_retention_duration = var.usage_message_retention
  depends_on                 = [time_sleep.apis_ready]
}

resource "google_pubsub_topic" "usage_dead_letter" {
  for_each                   = local.pubsub_functions
  name                       = "${each.value.topic}-dead-letter"
  message_retention_duration = var.usage_message_retention
  depends_on                 = [time_sleep.apis_ready]
}

resource "google_pubsub_subscription" "usage_push" {
  for_each                   = local.pubsub_functions
  name                       = "${each.value.topic}-${replace(each.key, "_", "-")}"
  topic                      = google_pubsub_topic.usage[each.key].id
  ack_deadline_seconds       = each.value.timeout
  message_retention_duration = var.usage_message_retention

  expiration_policy {
    ttl = ""
  }

  # A function that raises (transient failure) gets the message again after a backoff; after
  # max_delivery_attempts the message goes to the dead-letter topic (README, "Dead letters").
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.usage_dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  depends_on = [
    google_cloud_run_service_iam_member.pubsub_push_invoker,
    google_pubsub_topic_iam_member.dead_letter_publisher,
    time_sleep.iam_ready,
  ]
}

# Dead letters are kept on a pull subscription for inspection and replay (`warp rejects replay`).
resource "google_pubsub_subscription" "usage_dead_letter" {
  for_each                   = local.pubsub_functions
  name                       = "${each.value.topic}-dead-letter-hold"
  topic                      = google_pubsub_topic.usage_dead_letter[each.key].id
  message_retention_duration = var.usage_message_retention
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub forwards undeliverable messages as its service agent: it publishes to the dead-letter
# topic and must be a subscriber of the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.pubsub_functions
  topic    = google_pubsub_topic.usage_dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.pubsub_functions
  subscription = google_pubsub_subscription.usage_push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_pubsub_topic" "billing_alerts" {
  name       = "billing-alerts"
  depends_on = [time_sleep.apis_ready]
}

resource "google_pubsub_topic" "owned" {
  for_each   = local.owned_topics
  name       = each.key
  depends_on = [time_sleep.apis_ready]
}

# -- the billing-alerts consumers (issue 12: customer emails, receipts, reinstatement) --------------
# A function with trigger "alerts" gets its own push subscription on billing-alerts, with the same
# retry and dead-letter discipline as the usage subscriptions (a raise = a redelivery; each email is
# sent once per (document, step), so a redelivery sends nothing twice).

locals {
  alert_functions = { for name, spec in local.functions : name => spec if spec.trigger == "alerts" }
}

resource "google_pubsub_topic" "alerts_dead_letter" {
  for_each                   = local.alert_functions
  name                       = "billing-alerts-${replace(each.key, "_", "-")}-dead-letter"
  message_retention_duration = var.usage_message_retention
  depends_on                 = [time_sleep.apis_ready]
}

resource "google_pubsub_subscription" "alerts_push" {
  for_each                   = local.alert_functions
  name                       = "billing-alerts-${replace(each.key, "_", "-")}"
  topic                      = google_pubsub_topic.billing_alerts.id
  ack_deadline_seconds       = each.value.timeout
  message_retention_duration = var.usage_message_retention

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.alerts_dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  depends_on = [
    google_cloud_run_service_iam_member.alerts_push_invoker,
    google_pubsub_topic_iam_member.alerts_dead_letter_publisher,
    time_sleep.iam_ready,
  ]
}

resource "google_pubsub_subscription" "alerts_dead_letter" {
  for_each                   = local.alert_functions
  name                       = "billing-alerts-${replace(each.key, "_", "-")}-dead-letter-hold"
  topic                      = google_pubsub_topic.alerts_dead_letter[each.key].id
  message_retention_duration = var.usage_message_retention
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "alerts_dead_letter_publisher" {
  for_each = local.alert_functions
  topic    = google_pubsub_topic.alerts_dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "alerts_dead_letter_subscriber" {
  for_each     = local.alert_functions
  subscription = google_pubsub_subscription.alerts_push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# -- the invoices consumers (issue 12: HubSpot's last invoice and balance due per issued document) ----
# The cycle close (rollup) announces each issued document on `invoices`; `notify` updates the
# customer's HubSpot company through the hubspot queue, once per document. Same retry and
# dead-letter discipline as above; declared only while both the topic's owner and the consumer are.

locals {
  invoice_functions = {
    for name in ["notify"] : name => local.functions[name]
    # an "alerts" function: its push invoker (iam.tf alerts_push_invoker) serves this subscription too
    if contains(keys(local.functions), name) && contains(keys(local.owned_topics), "invoices")
    && try(local.functions[name].trigger, "") == "alerts"
  }
}

resource "google_pubsub_topic" "invoices_dead_letter" {
  for_each                   = local.invoice_functions
  name                       = "invoices-${replace(each.key, "_", "-")}-dead-letter"
  message_retention_duration = var.usage_message_retention
  depends_on                 = [time_sleep.apis_ready]
}

resource "google_pubsub_subscription" "invoices_push" {
  for_each                   = local.invoice_functions
  name                       = "invoices-${replace(each.key, "_", "-")}"
  topic                      = google_pubsub_topic.owned["invoices"].id
  ack_deadline_seconds       = each.value.timeout
  message_retention_duration = var.usage_message_retention

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.invoices_dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  depends_on = [
    google_cloud_run_service_iam_member.alerts_push_invoker,
    google_pubsub_topic_iam_member.invoices_dead_letter_publisher,
    time_sleep.iam_ready,
  ]
}

resource "google_pubsub_subscription" "invoices_dead_letter" {
  for_each                   = local.invoice_functions
  name                       = "invoices-${replace(each.key, "_", "-")}-dead-letter-hold"
  topic                      = google_pubsub_topic.invoices_dead_letter[each.key].id
  message_retention_duration = var.usage_message_retention
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "invoices_dead_letter_publisher" {
  for_each = local.invoice_functions
  topic    = google_pubsub_topic.invoices_dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "invoices_dead_letter_subscriber" {
  for_each     = local.invoice_functions
  subscription = google_pubsub_subscription.invoices_push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
