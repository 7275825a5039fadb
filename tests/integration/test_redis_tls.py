"""A real redis-server speaking TLS only (as Memorystore with transit encryption does), reached
through the Container's client with WARP_REDIS_URL=rediss://... and WARP_REDIS_CA_CERT.

The test makes its own CA and server certificate (openssl), starts redis-server with
``--port 0 --tls-port N`` and checks: the right CA connects (AUTH included), another CA is
refused at the handshake, and a plain redis:// client cannot talk to the TLS port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from warp_billing import bootstrap
from warp_billing.settings import Settings

PASSWORD = "tls-test-auth-string"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    for tool in ("openssl", "redis-server"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (the local stack installs redis-server; openssl is Debian's)")
    work = tmp_path_factory.mktemp("redis-tls")
    _make_ca(work, "warp-test-ca")
    _make_ca(work, "other-ca")
    # The server certificate names 127.0.0.1, so hostname checking can be tested both ways.
    (work / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=warp-redis", "-keyout", "server.key",
             "-out", "server.csr", cwd=work)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "warp-test-ca.pem", "-CAkey", "warp-test-ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.pem", cwd=work)
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", "server.pem",
         "--tls-key-file", "server.key", "--tls-ca-cert-file", "warp-test-ca.pem", "--tls-auth-clients", "no",
         "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("redis-server with TLS did not start listening within 10 s")
        yield work, port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _client(url: str, **settings):
    return bootstrap.Container(Settings(redis_url=url, redis_timeout_ms=3000, **settings)).redis


def test_the_server_ca_verifies_the_tls_server_and_auth_works(tls_redis):
    work, port = tls_redis
    client = _client(f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", redis_ca_cert=work / "warp-test-ca.pem")
    assert client.ping() is True
    client.set("warp:tls-probe", "1")
    assert client.get("warp:tls-probe") == "1"


def test_the_ca_alone_suffices_when_hostname_checks_are_off(tls_redis):
    work, port = tls_redis
    client = _client(f"rediss://:{PASSWORD}@localhost:{port}/0", redis_ca_cert=work / "warp-test-ca.pem",
                     redis_tls_check_hostname=False)
    assert client.ping() is True


def test_hostname_checking_refuses_a_name_the_certificate_does_not_hold(tls_redis):
    work, port = tls_redis
    client = _client(f"rediss://:{PASSWORD}@localhost:{port}/0", redis_ca_cert=work / "warp-test-ca.pem")
    with pytest.raises(redis.exceptions.ConnectionError, match="(?i)certificate|hostname"):
        client.ping()


def test_a_server_signed_by_another_ca_is_refused(tls_redis):
    work, port = tls_redis
    client = _client(f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", redis_ca_cert=work / "other-ca.pem")
    with pytest.raises(redis.exceptions.ConnectionError, match="(?i)certificate"):
        client.ping()


def test_a_plain_client_cannot_use_the_tls_port(tls_redis):
    _, port = tls_redis
    client = _client(f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()
