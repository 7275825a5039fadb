"""WARP_REDIS_CA_CERT / WARP_REDIS_TLS_CHECK_HOSTNAME: how a rediss:// URL becomes redis-py TLS options.

Memorystore with transit encryption serves TLS only, signed by a per-instance CA that no system
trust store holds, so the functions must be given that CA; a CA with a plain redis:// URL is a
configuration mistake that would send the AUTH string in clear text, and is refused.
"""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from warp_billing import bootstrap
from warp_billing.settings import Settings


@pytest.fixture(autouse=True)
def _no_caller_settings(monkeypatch):
    for name in list(os.environ):
        if name.startswith("WARP_"):
            monkeypatch.delenv(name)


def test_the_ca_file_and_hostname_policy_are_read_from_warp_variables(monkeypatch, tmp_path):
    ca = tmp_path / "server-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("WARP_REDIS_URL", "rediss://:secret@10.0.0.3:6378/0")
    monkeypatch.setenv("WARP_REDIS_CA_CERT", str(ca))
    monkeypatch.setenv("WARP_REDIS_TLS_CHECK_HOSTNAME", "false")

    settings = Settings()

    assert settings.redis_ca_cert == ca and settings.redis_tls_check_hostname is False
    assert bootstrap.redis_tls_options(settings) == {
        "ssl_cert_reqs": "required", "ssl_check_hostname": False, "ssl_ca_certs": str(ca)}


def test_a_ca_with_a_plain_redis_url_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="rediss://"):
        Settings(redis_url="redis://10.0.0.3:6379/0", redis_ca_cert=tmp_path / "ca.pem")


def test_a_missing_ca_file_is_a_named_configuration_error(tmp_path):
    settings = Settings(redis_url="rediss://10.0.0.3:6378/0", redis_ca_cert=tmp_path / "absent.pem")
    with pytest.raises(bootstrap.ConfigurationError, match="WARP_REDIS_CA_CERT .*absent.pem"):
        _ = bootstrap.Container(settings).redis


def test_plain_redis_gets_no_tls_options_and_tls_verifies_by_default():
    assert bootstrap.redis_tls_options(Settings(redis_url="redis://127.0.0.1:6390/0")) == {}
    options = bootstrap.redis_tls_options(Settings(redis_url="rediss://127.0.0.1:6378/0"))
    assert options == {"ssl_cert_reqs": "required", "ssl_check_hostname": True}


def test_the_client_is_built_with_the_ca(tmp_path):
    ca = tmp_path / "server-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(redis_url="rediss://:pw@10.0.0.3:6378/0", redis_ca_cert=ca, redis_tls_check_hostname=False)
    kwargs = bootstrap.Container(settings).redis.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_check_hostname"], kwargs["password"]) == (str(ca), False, "pw")
