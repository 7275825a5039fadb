"""Terraform for the collections pieces that reach HubSpot and attach PDFs (issue 12): `notify`
consumes the `invoices` topic through its own push subscription with a dead-letter policy, reads
the documents bucket and the vendor CDR bucket (dispute packages; objectViewer on those only),
and Scheduler calls the bulk HubSpot push. Parsed with python-hcl2 like
tests/unit/test_terraform_config.py."""

from __future__ import annotations

from tests.unit.test_terraform_config import CATALOG, DECLARED, LOCALS, RESOURCES, _compact

URI = "${google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri}"


def test_notify_consumes_the_invoices_topic_through_its_own_push_subscription_with_a_dead_letter_policy():
    assert {"notify", "rollup"} <= set(DECLARED) and "invoices" in CATALOG["rollup"]["topics"]
    consumers = _compact(LOCALS["invoice_functions"])
    assert "fornamein[notify]" in consumers and 'contains(keys(local.owned_topics),"invoices")' in consumers
    assert CATALOG["notify"]["trigger"] == "alerts"   # its push invoker (alerts_push_invoker) serves both
    topic_consumers = _compact(LOCALS["topic_consumers"])
    assert ('forname,specinlocal.invoice_functions:"invoices/${name}"' in topic_consumers
            and '"topic":"${google_pubsub_topic.owned["invoices"].id}"' in topic_consumers)
    push = RESOURCES["google_pubsub_subscription"]["consumer_push"]
    assert push["for_each"] == "${local.topic_consumers}" and push["topic"] == "${each.value.topic}"
    assert push["push_config"][0]["push_endpoint"] == URI
    assert push["push_config"][0]["oidc_token"][0] == {
        "service_account_email": "${google_service_account.pubsub_push.email}", "audience": URI}
    assert push["dead_letter_policy"][0] == {
        "dead_letter_topic": "${google_pubsub_topic.consumer_dead_letter[each.key].id}",
        "max_delivery_attempts": "${var.max_delivery_attempts}"}
    assert push["expiration_policy"][0]["ttl"] == ""
    assert RESOURCES["google_pubsub_topic_iam_member"]["consumer_dead_letter_publisher"]["role"] == \
        "roles/pubsub.publisher"
    assert RESOURCES["google_pubsub_subscription_iam_member"]["consumer_dead_letter_subscriber"]["role"] == \
        "roles/pubsub.subscriber"
    hold = RESOURCES["google_pubsub_subscription"]["consumer_dead_letter"]
    assert hold["retain_acked_messages"] is True and hold["for_each"] == "${local.topic_consumers}"


def test_notify_reads_only_the_documents_and_vendor_cdr_buckets_and_writes_none():
    spec = CATALOG["notify"]
    # documents: invoice PDFs; vendor_cdrs: the dispute packages reconcile writes there
    assert spec["bucket_read"] == ["documents", "vendor_cdrs"] and spec["bucket_write"] == [] and spec["buckets"] == []
    assert spec["env"]["WARP_DOCUMENT_STORE"] == "gcs"
    assert spec["env"]["WARP_DOCUMENTS_BUCKET"] == "${local.bucket_names.documents}"
    assert spec["env"]["WARP_VENDOR_CDR_BUCKET"] == CATALOG["reconcile"]["env"]["WARP_VENDOR_CDR_BUCKET"]
    # a bucket_read entry is one objectViewer grant on that bucket (iam.tf), never a project role
    grants = _compact(LOCALS["function_buckets"])
    assert ('forbucketinspec.bucket_read:"${name}/${bucket}/read"=>{"function":"${name}","bucket":"${bucket}",'
            '"role":"roles/storage.objectViewer"}') in grants
    member = RESOURCES["google_storage_bucket_iam_member"]["function_buckets"]
    assert member["for_each"] == "${local.function_buckets}" and member["role"] == "${each.value.role}"


def test_the_bulk_hubspot_push_is_a_daily_rollup_task():
    job = CATALOG["rollup"]["schedules"]["crm-push-daily"]
    assert job["body"] == {"task": "crm_push"}
    assert "hubspot" in CATALOG["rollup"]["enqueue"]
