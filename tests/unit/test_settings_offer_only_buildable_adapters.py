"""Settings offer only adapter names bootstrap can build; the tax engine is chosen and configured there too."""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from warp_billing import bootstrap
from warp_billing.adapters.avalara import AvalaraCommunicationsTaxEngine
from warp_billing.billing.errors import TaxError
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.settings import Settings

# setting -> the container part it chooses
CHOICES = {"usage_store": "usage_store", "ledger_store": "ledger_store", "plan_store": "plan_store",
           "alert_sink": "alert_publisher", "tax_engine": "tax_engine", "dispute_store": "dispute_store"}


@pytest.fixture(autouse=True)
def no_caller_settings(monkeypatch):
    for name in [name for name in os.environ if name.startswith("WARP_")]:
        monkeypatch.delenv(name)


def avalara_settings(tmp_path: Path, **values) -> dict:
    bill_to = tmp_path / "bill-to.yaml"
    bill_to.write_text("ACME: {country: USA, state: NY, zip: '10001', npa: 212}\n", encoding="utf-8")
    return {"avalara_username": "u", "avalara_password": "p", "avalara_bill_to": bill_to, **values}


@pytest.mark.parametrize("setting, value", [
    (setting, value) for setting in CHOICES for value in typing.get_args(Settings.model_fields[setting].annotation)
])
def test_every_offered_adapter_name_builds(tmp_path, setting, value):
    values = {setting: value, "data_dir": tmp_path, "plans_dir": tmp_path, "bigquery_endpoint": "http://127.0.0.1:1",
              "firestore_emulator_host": "127.0.0.1:1", **avalara_settings(tmp_path)}
    container = bootstrap.Container(Settings(**values))

    assert getattr(container, CHOICES[setting]) is not None  # built, and no cloud client was needed for it
    assert not {"bigquery_client", "firestore_client", "pubsub_client"} & set(container._parts)


@pytest.mark.parametrize("setting", ["usage_store", "ledger_store", "alert_sink"])
def test_memory_is_not_offered_since_nothing_builds_it(setting):
    with pytest.raises(ValidationError, match=setting):
        Settings(**{setting: "memory"})


def test_the_offline_tax_engine_reads_the_usf_table_setting(tmp_path):
    table = tmp_path / "usf.csv"
    table.write_text("year,quarter,factor_pct\n2026,4,40.0\n", encoding="utf-8")

    engine = bootstrap.Container(Settings(usf_table=table)).tax_engine

    assert isinstance(engine, OfflineTaxEngine) and engine.factors.source == str(table)
    with pytest.raises(TaxError, match="missing.csv"):
        _ = bootstrap.Container(Settings(usf_table=tmp_path / "missing.csv")).tax_engine


def test_avalara_takes_its_credentials_and_locations_from_settings(tmp_path):
    engine = bootstrap.Container(Settings(tax_engine="avalara", avalara_base_url="http://127.0.0.1:1",
                                          **avalara_settings(tmp_path))).tax_engine

    assert isinstance(engine, AvalaraCommunicationsTaxEngine)
    assert engine._settings.base_url == "http://127.0.0.1:1" and engine._settings.password == "p"
    assert engine._bill_to["ACME"].npa == 212
    assert "p" not in repr(Settings(avalara_password="p").avalara_password)  # a secret is never printed


@pytest.mark.parametrize("values, message", [
    ({"avalara_password": ""}, "WARP_AVALARA_USERNAME and WARP_AVALARA_PASSWORD"),
    ({"avalara_bill_to": None}, "WARP_AVALARA_BILL_TO"),
    ({"avalara_bill_to": Path("/nonexistent/bill-to.yaml")}, "bill-to.yaml"),
])
def test_avalara_without_what_it_needs_is_a_named_configuration_error(tmp_path, values, message):
    settings = Settings(tax_engine="avalara", **{**avalara_settings(tmp_path), **values})
    with pytest.raises(bootstrap.ConfigurationError, match=message):
        _ = bootstrap.Container(settings).tax_engine


@pytest.mark.parametrize("text, message", [
    ("ACME: {country: USA, state: NY}\n", "customer ACME: missing 'zip'"),
    ("- ACME\n", "expected a mapping"),
    ("ACME: {country: USA, state: NY, zip: '10001', npa: twelve}\n", "customer ACME"),
])
def test_a_bad_billing_location_file_names_the_customer(tmp_path, text, message):
    settings = Settings(tax_engine="avalara", **avalara_settings(tmp_path))
    settings.avalara_bill_to.write_text(text, encoding="utf-8")
    with pytest.raises(bootstrap.ConfigurationError, match=message):
        _ = bootstrap.Container(settings).tax_engine
