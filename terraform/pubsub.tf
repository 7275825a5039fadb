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

# -- the consumers of billing-alerts, invoices and object notifications (issues 12, 13) ----------------
# A function with trigger "alerts" gets its own push subscription on billing-alerts (customer emails,
# receipts, reinstatement); `notify` also consumes `invoices` (the cycle close announces each issued
# document there; notify updates the customer's HubSpot company once per document). Each consumer
# has the same retry and dead-letter discipline as the usage subscriptions (a raise = a redelivery;
# every effect is keyed, so a redelivery does nothing twice). An invoices consumer is declared only
# while both the topic's owner and the consumer are, and is an "alerts" function, whose push invoker
# (iam.tf alerts_push_invoker) serves both of its subscriptions.

locals {
  alert_functions = { for name, spec in local.functions : name => spec if spec.trigger == "alerts" }
  invoice_functions = {
    for name in ["notify"] : name => local.functions[name]
    if contains(keys(local.functions), name) && contains(keys(local.owned_topics), "invoices")
    && try(local.functions[name].trigger, "") == "alerts"
  }
  # "<topic>/<function>" -> the subscription's name, topic, ack deadline and first retry backoff
  topic_consumers = merge(
    { for name, spec in local.alert_functions : "billing-alerts/${name}" => {
      function = name, ack_deadline = spec.timeout, min_backoff = "10s",
      name     = "billing-alerts-${replace(name, "_", "-")}", topic = google_pubsub_topic.billing_alerts.id
    } },
    { for name, spec in local.invoice_functions : "invoices/${name}" => {
      function = name, ack_deadline = spec.timeout, min_backoff = "10s",
      name     = "invoices-${replace(name, "_", "-")}", topic = google_pubsub_topic.owned["invoices"].id
    } },
    # object-finalize notifications (vendor_cdrs.tf): a reconciliation may take the function's whole
    # timeout, and Pub/Sub allows an ack deadline of at most 600 s
    { for name, spec in local.object_functions : "${spec.bucket}-finalized/${name}" => {
      function = name, ack_deadline = min(600, local.functions[name].timeout + 30), min_backoff = "60s",
      name     = google_pubsub_topic.object_finalized[name].name, topic = google_pubsub_topic.object_finalized[name].id
    } },
  )
}

resource "google_pubsub_topic" "consumer_dead_letter" {
  for_each                   = local.topic_consumers
  name                       = "${each.value.name}-dead-letter"
  message_retention_duration = var.usage_message_retention
  depends_on                 = [time_sleep.apis_ready]
}

resource "google_pubsub_subscription" "consumer_push" {
  for_each                   = local.topic_consumers
  name                       = each.value.name
  topic                      = each.value.topic
  ack_deadline_seconds       = each.value.ack_deadline
  message_retention_duration = var.usage_message_retention

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = each.value.min_backoff
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.consumer_dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri
    }
  }

  depends_on = [
    google_cloud_run_service_iam_member.alerts_push_invoker,
    google_cloud_run_service_iam_member.object_push_invoker,
    google_pubsub_topic_iam_member.consumer_dead_letter_publisher,
    time_sleep.iam_ready,
  ]
}

resource "google_pubsub_subscription" "consumer_dead_letter" {
  for_each                   = local.topic_consumers
  name                       = "${each.value.name}-dead-letter-hold"
  topic                      = google_pubsub_topic.consumer_dead_letter[each.key].id
  message_retention_duration = var.usage_message_retention
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "consumer_dead_letter_publisher" {
  for_each = local.topic_consumers
  topic    = google_pubsub_topic.consumer_dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "consumer_dead_letter_subscriber" {
  for_each     = local.topic_consumers
  subscription = google_pubsub_subscription.consumer_push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# The alerts and invoices consumers had resources of their own before they shared these: the same
# subscriptions and topics, moved rather than destroyed and created again (no message is lost).
moved {
  from = google_pubsub_topic.alerts_dead_letter["notify"]
  to   = google_pubsub_topic.consumer_dead_letter["billing-alerts/notify"]
}
moved {
  from = google_pubsub_subscription.alerts_push["notify"]
  to   = google_pubsub_subscription.consumer_push["billing-alerts/notify"]
}
moved {
  from = google_pubsub_subscription.alerts_dead_letter["notify"]
  to   = google_pubsub_subscription.consumer_dead_letter["billing-alerts/notify"]
}
moved {
  from = google_pubsub_topic_iam_member.alerts_dead_letter_publisher["notify"]
  to   = google_pubsub_topic_iam_member.consumer_dead_letter_publisher["billing-alerts/notify"]
}
moved {
  from = google_pubsub_subscription_iam_member.alerts_dead_letter_subscriber["notify"]
  to   = google_pubsub_subscription_iam_member.consumer_dead_letter_subscriber["billing-alerts/notify"]
}
