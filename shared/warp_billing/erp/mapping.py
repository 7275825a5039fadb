"""The NetSuite mapping: versioned configuration from WARP's codes to NetSuite internal ids.

One YAML file (``WARP_NETSUITE_MAPPING``) says which NetSuite item bills each SKU and fee, which
account each WARP general-ledger code is, the currency, terms and subsidiary ids, and which
customer payload keys fill which entity fields. It carries a ``version`` that changes with every
edit; every permanent error names the file and version it was checked against, and every synced
document records the version it was synced with. An unmapped SKU is never guessed::

    version: "2026-12-01.1"
    subsidiary: 1                    # default subsidiary internal id
    currencies: {USD: 1}
    terms: {15: 7, 30: 2}            # net days -> terms internal id
    items:                           # SKU (exact, or an fnmatch pattern such as API-*-DISCOUNT) -> item id
      VOICE-INTERSTATE: 1001
    fees: {USF: 2001, E911: 2002}    # fee code -> item id
    accounts: {"1200": 120}          # WARP GL code (revenue_recognition.AccountMap) -> account id
    payments: {account: 130}         # where customer payments are deposited
    customers:
      fields: {company_name: companyName, email: email}   # payload key -> entity field
      subsidiaries: {ACME: 2}        # per-customer subsidiary override
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import MappingError, MappingFileError

KNOWN_KEYS = frozenset({"version", "subsidiary", "currencies", "terms", "items", "fees", "accounts", "payments",
                        "customers"})
CUSTOMER_KEYS = frozenset({"fields", "subsidiaries"})


@dataclass(frozen=True)
class ErpMapping:
    """A loaded mapping (see the module docstring); ``source`` and ``version`` name it in errors."""

    version: str
    source: str
    subsidiary: str
    currencies: Mapping[str, str]
    terms: Mapping[int, str]
    items: Mapping[str, str]
    fees: Mapping[str, str]
    accounts: Mapping[str, str]
    payment_account: str | None = None
    customer_fields: Mapping[str, str] = field(default_factory=dict)
    customer_subsidiaries: Mapping[str, str] = field(default_factory=dict)
    digest: str = ""

    @property
    def name(self) -> str:
        """How errors name this mapping: ``file@version``."""
        return f"{self.source}@{self.version}"

    def item_for_sku(self, sku: str, doc_id: str) -> str:
        if sku in self.items:
            return self.items[sku]
        # Patterns: the most specific (longest) pattern that matches wins, so results never
        # depend on the order of keys in the file.
        matches = [key for key in self.items if any(ch in key for ch in "*?[") and fnmatch.fnmatchcase(sku, key)]
        if matches:
            return self.items[max(matches, key=lambda key: (len(key), key))]
        raise MappingError("UNMAPPED_SKU", f"SKU {sku!r} of {doc_id} has no NetSuite item in mapping {self.name}",
                           f"items.{sku}")

    def item_for_fee(self, code: str, doc_id: str) -> str:
        try:
            return self.fees[code]
        except KeyError:
            raise MappingError("UNMAPPED_FEE", f"fee {code!r} of {doc_id} has no NetSuite item in mapping {self.name}",
                               f"fees.{code}") from None

    def account(self, code: str, doc_id: str) -> str:
        try:
            return self.accounts[str(code)]
        except KeyError:
            raise MappingError("UNMAPPED_ACCOUNT",
                               f"account {code!r} of {doc_id} has no NetSuite account in mapping {self.name}",
                               f"accounts.{code}") from None

    def currency(self, code: str, doc_id: str) -> str:
        try:
            return self.currencies[code]
        except KeyError:
            raise MappingError("UNMAPPED_CURRENCY",
                               f"currency {code!r} of {doc_id} has no NetSuite id in mapping {self.name}",
                               f"currencies.{code}") from None

    def terms_for(self, net_days: int, doc_id: str) -> str:
        try:
            return self.terms[int(net_days)]
        except (KeyError, ValueError):
            raise MappingError("UNMAPPED_TERMS",
                               f"net {net_days} days of {doc_id} has no NetSuite terms in mapping {self.name}",
                               f"terms.{net_days}") from None

    def subsidiary_for(self, customer_id: str) -> str:
        return self.customer_subsidiaries.get(customer_id, self.subsidiary)


def _ids(section: Any, name: str, source: str) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise MappingFileError(f"{source}: {name} must be a mapping of code -> internal id")
    result = {}
    for key, value in section.items():
        if value is None or isinstance(value, (Mapping, list)) or str(value).strip() == "":
            raise MappingFileError(f"{source}: {name}.{key} must be an internal id, got {value!r}")
        result[str(key)] = str(value)
    return result


def parse_mapping(document: Any, source: str, digest: str = "") -> ErpMapping:
    """An ``ErpMapping`` from parsed YAML; unknown keys and a missing version are errors (typos fail loudly)."""
    if not isinstance(document, Mapping):
        raise MappingFileError(f"{source}: a NetSuite mapping is a YAML mapping")
    unknown = sorted(set(map(str, document)) - KNOWN_KEYS)
    if unknown:
        raise MappingFileError(f"{source}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
    version = document.get("version")
    if version is None or str(version).strip() == "":
        raise MappingFileError(f"{source}: the mapping needs a version (change it with every edit)")
    if document.get("subsidiary") is None:
        raise MappingFileError(f"{source}: subsidiary (the default subsidiary internal id) is required")
    customers = document.get("customers") or {}
    if not isinstance(customers, Mapping):
        raise MappingFileError(f"{source}: customers must be a mapping")
    unknown_customer = sorted(set(map(str, customers)) - CUSTOMER_KEYS)
    if unknown_customer:
        raise MappingFileError(f"{source}: unknown customers keys {', '.join(unknown_customer)}")
    terms_raw = _ids(document.get("terms"), "terms", source)
    try:
        terms = {int(days): value for days, value in terms_raw.items()}
    except ValueError:
        raise MappingFileError(f"{source}: terms keys are net days (integers)") from None
    payments = document.get("payments") or {}
    if not isinstance(payments, Mapping) or set(map(str, payments)) - {"account"}:
        raise MappingFileError(f"{source}: payments takes one key, account")
    return ErpMapping(
        version=str(version), source=source, subsidiary=str(document["subsidiary"]),
        currencies=_ids(document.get("currencies"), "currencies", source), terms=terms,
        items=_ids(document.get("items"), "items", source), fees=_ids(document.get("fees"), "fees", source),
        accounts=_ids(document.get("accounts"), "accounts", source),
        payment_account=str(payments["account"]) if payments.get("account") is not None else None,
        customer_fields=_ids(customers.get("fields"), "customers.fields", source),
        customer_subsidiaries=_ids(customers.get("subsidiaries"), "customers.subsidiaries", source),
        digest=digest,
    )


def load_mapping(path: str | Path) -> ErpMapping:
    """Read and check the mapping file at ``path``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MappingFileError(f"cannot read NetSuite mapping {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MappingFileError(f"{path}: not a UTF-8 YAML file: {exc}") from None
    return parse_mapping(document, str(path), hashlib.sha256(data).hexdigest()[:12])


class MappingFile:
    """The mapping at a path, re-read when the file changes (a fix applies to the next task, no redeploy)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._mapping: ErpMapping | None = None

    def current(self) -> ErpMapping:
        try:
            info = self.path.stat()
        except OSError as exc:
            raise MappingFileError(f"cannot read NetSuite mapping {self.path}: {exc.strerror}") from None
        stamp = (info.st_mtime_ns, info.st_size)
        if self._mapping is None or stamp != self._stamp:
            self._mapping = load_mapping(self.path)
            self._stamp = stamp
        return self._mapping
