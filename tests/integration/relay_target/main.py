"""A cloudevent function for the relay tests: records what functions-framework decoded.

Each delivery appends one JSON line to the file named by RELAY_TARGET_OUT. A message whose
attribute ``fail_first`` is N fails (HTTP 500) on its first N deliveries, so the tests can
watch the relay's redelivery and dead-lettering against a real functions-framework server.
"""

import base64
import json
import os

import functions_framework


@functions_framework.cloud_event
def record_delivery(cloud_event):
    out = os.environ["RELAY_TARGET_OUT"]
    message = cloud_event.data["message"]
    raw = base64.b64decode(message["data"])
    entry = {
        "specversion": cloud_event["specversion"],
        "id": cloud_event["id"],
        "type": cloud_event["type"],
        "source": cloud_event["source"],
        "time": cloud_event["time"],
        "subscription": cloud_event.data["subscription"],
        "message_keys": sorted(message),
        "attributes": message.get("attributes"),
        "messageId": message["messageId"],
        "message_id": message["message_id"],
        "publishTime": message["publishTime"],
        "publish_time": message["publish_time"],
        "data_b64": base64.b64encode(raw).decode("ascii"),
    }
    with open(out, "a", encoding="utf-8") as sink:
        sink.write(json.dumps(entry) + "\n")
    fail_first = int((message.get("attributes") or {}).get("fail_first", "0"))
    if fail_first:
        with open(out, encoding="utf-8") as sink:
            deliveries = sum(1 for line in sink if json.loads(line)["messageId"] == message["messageId"])
        if deliveries <= fail_first:
            raise RuntimeError(f"simulated transient failure {deliveries}/{fail_first}")
