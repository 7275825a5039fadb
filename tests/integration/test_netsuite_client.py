"""The SuiteTalk REST adapter against the NetSuite stand-in (tools/netsuite_standin.py, in-process).

The stand-in verifies the JWT assertion's signature, ``aud`` and ``exp``, enforces the account's
concurrency limit and injects faults; these tests drive each fault once, deterministically.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import ThreadingHTTPServer

import jwt
import pytest
import requests
from tests.netsuite_keys import key_and_certificate

import netsuite_standin  # tools/ (on sys.path through this folder's conftest)
from warp_billing.adapters.netsuite import OAuthTokens, SuiteTalkClient, exact_json
from warp_billing.erp.errors import ErpRejected, ErpTransient

KID, CLIENT = "cert-1", "client-1"
KEY, CERT = key_and_certificate()


@pytest.fixture(scope="module")
def standin_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), netsuite_standin.Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def standin(standin_url):
    control = standin_url + "/_control"
    requests.post(control, json={"reset": True, "faults": {}, "concurrency_limit": 5, "latency_ms": 0,
                                 "timeout_s": 0.6, "token_lifetime_s": 3600, "seed": 7,
                                 "certificates": {KID: CERT}, "clients": {KID: CLIENT}}, timeout=5).raise_for_status()

    def configure(**update):
        requests.post(control, json=update, timeout=5).raise_for_status()

    def stats():
        return requests.get(control, timeout=5).json()["stats"]

    def records():
        return requests.get(control + "/records", timeout=5).json()["records"]

    return standin_url, configure, stats, records


def client_for(url, *, key=KEY, timeout_s=0.3, clock=time.time, margin_s=300):
    def tokens(session):
        return OAuthTokens(session, url + "/services/rest/auth/oauth2/v1/token", client_id=lambda: CLIENT,
                           certificate_id=lambda: KID, private_key=lambda: key, timeout_s=5, margin_s=margin_s,
                           clock=clock)

    return SuiteTalkClient(url, tokens, timeout_s=timeout_s, wait_s=0.01)


CUSTOMER = {"externalId": "customer:ACME", "companyName": "Acme", "subsidiary": {"id": "1"}}


def test_upsert_by_external_id_creates_once_and_updates_in_place(standin):
    url, configure, stats, records = standin
    client = client_for(url)
    first = client.upsert("customer", "customer:ACME", CUSTOMER)
    second = client.upsert("customer", "customer:ACME", {**CUSTOMER, "companyName": "Acme Inc"})
    assert first.internal_id == second.internal_id
    assert client.find("customer", "customer:ACME").internal_id == first.internal_id
    assert client.find("customer", "customer:NOBODY") is None
    [record] = records()
    assert record["body"]["companyName"] == "Acme Inc" and record["writes"] == 2
    assert stats()["tokens_issued"] == 1  # cached across calls


def test_commit_then_drop_is_looked_up_and_not_written_again(standin):
    url, configure, stats, records = standin
    client = client_for(url)
    configure(faults={"rate_commit_drop": 1.0})
    with pytest.raises(ErpTransient):
        # every call (the lookup included) is dropped: the outcome stays unknown, so retry later
        client.upsert("customer", "customer:ACME", CUSTOMER)
    configure(faults={"rate_commit_drop": 0.0})
    ref = client.upsert("customer", "customer:ACME", CUSTOMER)
    [record] = records()
    assert record["id"] == ref.internal_id and stats()["creates"] == 1


def test_after_a_dropped_write_the_lookup_finds_the_record_and_no_second_write_happens(standin):
    url, configure, stats, records = standin
    client = client_for(url)
    # seed 7: first draw < 0.5 (commit_drop), then >= 0.5 for the lookup
    configure(faults={"rate_commit_drop": 0.5}, seed=3)
    draws = __import__("random").Random(3)
    assert draws.random() < 0.5 <= draws.random()
    ref = client.upsert("customer", "customer:ACME", CUSTOMER)
    [record] = records()
    assert record["id"] == ref.internal_id and record["writes"] == 1
    assert stats()["rate_commit_drop"] == 1


def test_a_timeout_without_commit_is_looked_up_then_written(standin):
    url, configure, stats, records = standin
    client = client_for(url)
    configure(faults={"rate_timeout": 0.5}, seed=3)
    client.upsert("customer", "customer:ACME", CUSTOMER)
    [record] = records()
    assert record["writes"] == 1 and stats()["rate_timeout"] >= 1


@pytest.mark.parametrize("fault, code", [("rate_429", "429"), ("rate_limit400", "SSS_REQUEST_LIMIT_EXCEEDED"),
                                         ("rate_5xx", "503")])
def test_throttling_and_server_errors_are_transient(standin, fault, code):
    url, configure, stats, records = standin
    client = client_for(url)
    configure(faults={fault: 1.0})
    with pytest.raises(ErpTransient) as raised:
        client.upsert("customer", "customer:ACME", CUSTOMER)
    assert raised.value.code == code
    if fault == "rate_429":
        assert raised.value.retry_after_s == 1
    assert records() == []


def test_a_validation_error_is_permanent_with_code_detail_and_path(standin):
    url, configure, stats, records = standin
    client = client_for(url)
    body = {"externalId": "ACME-INV-000001", "entity": {"id": "999"}, "item": {"items": []}}
    with pytest.raises(ErpRejected) as raised:
        client.upsert("invoice", "ACME-INV-000001", body)
    assert (raised.value.code, raised.value.path) == ("INVALID_KEY_OR_REF", "entity")


def test_an_expired_token_is_refreshed_once_on_401(standin):
    url, configure, stats, records = standin
    client = client_for(url)
    client.upsert("customer", "customer:ACME", CUSTOMER)
    configure(expire_tokens=True)
    client.upsert("customer", "customer:ACME", CUSTOMER)
    assert stats()["tokens_issued"] == 2 and stats()["unauthorized"] == 1


def test_a_token_is_renewed_shortly_before_it_expires(standin):
    url, configure, stats, records = standin
    now = [1_000_000.0 + time.time()]
    client = client_for(url, clock=lambda: now[0] - 1_000_000.0, margin_s=300)
    client.upsert("customer", "customer:ACME", CUSTOMER)
    now[0] += 3200  # 400 s left: still used
    client.upsert("customer", "customer:ACME", CUSTOMER)
    assert stats()["tokens_issued"] == 1
    now[0] += 200  # 200 s left < margin: renewed before NetSuite would refuse it
    with pytest.raises(ErpTransient):
        # the stand-in checks iat/exp against the real clock: an assertion from the future is refused
        client.upsert("customer", "customer:ACME", CUSTOMER)
    assert stats()["token_refusals"] == 1


def test_the_token_endpoint_refuses_another_key_a_wrong_audience_a_long_exp_and_rs256(standin):
    url, configure, stats, records = standin
    token_url = url + "/services/rest/auth/oauth2/v1/token"
    other_key, _ = key_and_certificate()
    now = int(time.time())
    good = {"iss": CLIENT, "scope": ["rest_webservices"], "aud": token_url, "iat": now, "exp": now + 3600}

    def ask(claims, key=KEY, alg="PS256", kid=KID):
        assertion = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})
        return requests.post(token_url, data={
            "grant_type": "client_credentials", "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, timeout=5)

    assert ask(good).status_code == 200
    assert ask(good, key=other_key).status_code == 400
    assert ask({**good, "aud": "https://elsewhere/token"}).status_code == 400
    assert ask({**good, "exp": now + 7200}).status_code == 400
    assert ask({**good, "exp": now - 10, "iat": now - 100}).status_code == 400
    assert ask({**good, "iss": "someone-else"}).status_code == 400
    assert ask(good, alg="RS256").status_code == 400
    assert ask(good, kid="unknown").status_code == 400
    assert stats()["token_refusals"] == 7


def test_more_calls_in_flight_than_the_account_allows_get_429(standin):
    url, configure, stats, records = standin
    configure(concurrency_limit=1, latency_ms=300)
    client = client_for(url, timeout_s=5)
    client.tokens.token()

    def call(n):
        try:
            client.upsert("customer", f"customer:C{n}", {**CUSTOMER, "externalId": f"customer:C{n}"})
            return "ok"
        except ErpTransient as exc:
            return exc.code

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(call, range(3)))
    assert results.count("ok") >= 1 and "429" in results
    assert stats()["over_limit"] >= 1


def test_amounts_go_out_as_exact_json_numbers():
    text = exact_json({"amount": Decimal("0.10"), "lines": [Decimal("-12345678901234.000001")], "x": None})
    assert text == '{"amount":0.10,"lines":[-12345678901234.000001],"x":null}'
    with pytest.raises(TypeError):
        exact_json({"amount": 0.1})


def test_a_re_sent_invoice_replaces_its_lines_instead_of_adding_them_again(standin):
    url, configure, stats, records = standin
    client = client_for(url)
    customer = client.upsert("customer", "customer:ACME", CUSTOMER)
    invoice = {"externalId": "ACME-INV-000001", "entity": {"id": customer.internal_id},
               "item": {"items": [{"item": {"id": "1001"}, "quantity": Decimal("10"), "amount": Decimal("1.50")}]}}
    client.upsert("invoice", "ACME-INV-000001", invoice)
    client.upsert("invoice", "ACME-INV-000001", invoice)  # a redelivery after a lost answer
    [record] = [r for r in records() if r["type"] == "invoice"]
    assert len(record["body"]["item"]["items"]) == 1 and record["total"] == "1.50"
    # Without ?replace the stand-in adds the lines, as NetSuite does: the bug the client avoids.
    token = client.tokens.token()
    response = requests.put(f"{url}/services/rest/record/v1/invoice/eid:ACME-INV-000001",
                            data=exact_json(invoice), timeout=5,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status_code == 204
    [record] = [r for r in records() if r["type"] == "invoice"]
    assert len(record["body"]["item"]["items"]) == 2 and record["total"] == "3.00"
