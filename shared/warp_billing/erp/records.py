"""Outbox documents as NetSuite SuiteTalk REST record bodies (pure: values in, values out).

Each document becomes one or more upserts keyed by externalId (= the WARP document id):

* ``customer``          -> ``customer``: entity fields from the billing profile via the mapping;
* ``invoice``           -> ``invoice``: every line and every fee (USF, E911 ...) as an item line,
  so the NetSuite total equals the WARP total to the cent;
* ``credit_memo``       -> ``creditMemo``: the credit note's lines as positive credits, applied to
  the invoice it credits (a WARP correction is credit memo + new invoice, never an edit);
* ``customer_payment``  -> ``customerPayment`` applied to the invoices it pays;
* ``customer_deposit``  -> ``customerDeposit``: a prepaid top-up, money held for the customer (the
  liability the prepaid statement journals draw on), never a receivable;
* ``customer_refund``   -> ``customerRefund`` of a refund or void: applied to the customer payment
  (``apply``) or to the customer deposit (``deposit``) it gives back. When the reversal reopened
  invoices, the payment's ``apply`` lines are first rewritten to what is left on each invoice (an
  upsert of the payment that replaces its ``apply`` sublist), so that the refunded amount is
  unapplied on the payment, as NetSuite requires of a refund. reference.md documents create,
  upsert and update (PATCH / ``?replace``) and no delete or void of a record, so a void of a
  payment already in NetSuite is a refund of the whole payment too (the money out of the same
  account it went into; both records stay, as in the gateway);
* ``journal_entry``     -> one ``journalEntry`` per entry of the journal (the invoice entry, then
  each month's recognition entry): externalId ``DOC`` for the first, ``DOC#2``, ``DOC#3`` ...

Money stays Decimal (the adapter writes it as an exact JSON number). References to other records
are NetSuite internal ids that the caller resolved (``refs``: document id -> internal id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..ports import OutboxDocument
from .errors import MappingError
from .mapping import ErpMapping

CUSTOMER = "customer"
INVOICE = "invoice"
CREDIT_MEMO = "credit_memo"
CUSTOMER_PAYMENT = "customer_payment"
CUSTOMER_DEPOSIT = "customer_deposit"
CUSTOMER_REFUND = "customer_refund"
JOURNAL_ENTRY = "journal_entry"

RECORD_TYPES = {CUSTOMER: "customer", INVOICE: "invoice", CREDIT_MEMO: "creditMemo",
                CUSTOMER_PAYMENT: "customerPayment", CUSTOMER_DEPOSIT: "customerDeposit",
                CUSTOMER_REFUND: "customerRefund", JOURNAL_ENTRY: "journalEntry"}


@dataclass(frozen=True, slots=True)
class ErpWrite:
    """One upsert: PUT /record/v1/<record_type>/eid:<external_id> with ``body``."""

    record_type: str
    external_id: str
    body: Mapping[str, Any]


def customer_doc_id(customer_id: str) -> str:
    """The outbox id (and NetSuite externalId) of a customer record."""
    return f"customer:{customer_id}"


def required_refs(doc: OutboxDocument) -> tuple[str, ...]:
    """Document ids whose NetSuite internal ids the record body needs (beyond ``doc.prerequisites``)."""
    payload = doc.payload
    if doc.doc_type in (INVOICE, CREDIT_MEMO, CUSTOMER_PAYMENT, CUSTOMER_DEPOSIT, CUSTOMER_REFUND):
        needed = [customer_doc_id(doc.customer_id)]
        if doc.doc_type == CREDIT_MEMO and payload.get("credits"):
            needed.append(str(payload["credits"]))
        if doc.doc_type == CUSTOMER_PAYMENT:
            needed.extend(str(item["invoice_number"]) for item in payload.get("applies_to", ()))
        if doc.doc_type == CUSTOMER_REFUND:
            needed.append(str(payload["refunds"]))
            needed.extend(str(item["invoice_number"]) for item in payload.get("payment_applies_to", ()))
        return tuple(needed)
    return ()


def erp_writes(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    """The upserts that put ``doc`` into NetSuite; MappingError when something is not mapped."""
    build = _BUILDERS.get(doc.doc_type)
    if build is None:
        raise MappingError("UNKNOWN_DOCUMENT_TYPE", f"{doc.doc_id}: document type {doc.doc_type!r} is not synced; "
                           f"known: {', '.join(sorted(_BUILDERS))}", "doc_type")
    try:
        return build(doc, mapping, refs)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise MappingError("MALFORMED_DOCUMENT", f"{doc.doc_id}: payload cannot be read: {exc!r}", "payload") from None


def _money(text: Any) -> Decimal:
    if isinstance(text, float):
        raise ValueError(f"money as a float ({text!r}); documents carry decimal strings")
    return Decimal(str(text))


def _ref(refs: Mapping[str, str], doc_id: str) -> dict:
    return {"id": refs[doc_id]}


def _customer(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    payload = doc.payload
    body: dict[str, Any] = {"externalId": doc.doc_id, "subsidiary": {"id": mapping.subsidiary_for(doc.customer_id)}}
    for key, field_name in mapping.customer_fields.items():
        if payload.get(key) is not None:
            body[field_name] = payload[key]
    body.setdefault("companyName", payload.get("company_name") or doc.customer_id)
    if payload.get("currency"):
        body["currency"] = {"id": mapping.currency(payload["currency"], doc.doc_id)}
    if payload.get("net_days") is not None:
        body["terms"] = {"id": mapping.terms_for(int(payload["net_days"]), doc.doc_id)}
    return [ErpWrite(RECORD_TYPES[CUSTOMER], doc.doc_id, body)]


def _item_lines(doc: OutboxDocument, mapping: ErpMapping, sign: int) -> list[dict]:
    items = []
    for line in doc.payload["lines"]:
        items.append({"item": {"id": mapping.item_for_sku(line["sku"], doc.doc_id)},
                      "description": line.get("description", line["sku"]),
                      "quantity": _money(line["quantity"]), "amount": sign * _money(line["amount"]),
                      "custcol_warp_sku": line["sku"]})
    for fee in doc.payload.get("fees", ()):
        items.append({"item": {"id": mapping.item_for_fee(fee["code"], doc.doc_id)},
                      "description": fee.get("description", fee["code"]),
                      "quantity": Decimal(1), "amount": sign * _money(fee["amount"]),
                      "custcol_warp_sku": fee["code"]})
    return items


def _transaction_head(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> dict[str, Any]:
    payload = doc.payload
    return {
        "externalId": doc.doc_id,
        "tranId": doc.doc_id,
        "entity": _ref(refs, customer_doc_id(doc.customer_id)),
        "tranDate": payload["issue_date"],
        "subsidiary": {"id": mapping.subsidiary_for(doc.customer_id)},
        "currency": {"id": mapping.currency(payload["currency"], doc.doc_id)},
        "memo": f"WARP {payload.get('billing_period', '')}".strip(),
    }


def _invoice(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    payload = doc.payload
    body = _transaction_head(doc, mapping, refs)
    body["dueDate"] = payload["due_date"]
    if payload.get("terms", {}).get("net_days") is not None:
        body["terms"] = {"id": mapping.terms_for(int(payload["terms"]["net_days"]), doc.doc_id)}
    body["item"] = {"items": _item_lines(doc, mapping, 1)}
    return [ErpWrite(RECORD_TYPES[INVOICE], doc.doc_id, body)]


def _credit_memo(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    payload = doc.payload
    body = _transaction_head(doc, mapping, refs)
    body["item"] = {"items": _item_lines(doc, mapping, -1)}  # a credit note's negative lines are credits
    credited = payload.get("credits")
    if credited:
        body["apply"] = {"items": [{"doc": _ref(refs, str(credited)), "apply": True,
                                    "amount": -_money(payload["total"])}]}
    return [ErpWrite(RECORD_TYPES[CREDIT_MEMO], doc.doc_id, body)]


def _money_movement(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> dict[str, Any]:
    """The fields a customer payment, deposit and refund share: whose money, when, in what, which account."""
    payload = doc.payload
    return {
        "externalId": doc.doc_id,
        "customer": _ref(refs, customer_doc_id(doc.customer_id)),
        "tranDate": payload["date"],
        "currency": {"id": mapping.currency(payload["currency"], doc.doc_id)},
        "account": {"id": _payment_account(doc, mapping)},
        "subsidiary": {"id": mapping.subsidiary_for(doc.customer_id)},
    }


def _money_in(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> dict[str, Any]:
    """A customer payment's or deposit's fields: the movement and how much came in."""
    return {**_money_movement(doc, mapping, refs), "payment": _money(doc.payload["amount"])}


def _customer_payment(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    body = _money_in(doc, mapping, refs)
    body["apply"] = {"items": [{"doc": _ref(refs, str(item["invoice_number"])), "apply": True,
                                "amount": _money(item["amount"])} for item in doc.payload.get("applies_to", ())]}
    return [ErpWrite(RECORD_TYPES[CUSTOMER_PAYMENT], doc.doc_id, body)]


def _payment_account(doc: OutboxDocument, mapping: ErpMapping) -> str:
    account = doc.payload.get("account") or mapping.payment_account
    if account is None:
        raise MappingError("UNMAPPED_ACCOUNT", f"{doc.doc_id}: no payment account (payments.account) in mapping "
                           f"{mapping.name}", "payments.account")
    return str(account)


def _customer_deposit(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    payload = doc.payload
    # NetSuite posts a deposit to its Customer Deposits account (an accounting preference, not a field
    # of the record): that must be the account WARP's deposits code maps to, which the prepaid statement
    # journals debit. An account the mapping does not know is refused here rather than left to diverge.
    mapping.account(str(payload.get("deposit_account", "2200")), doc.doc_id)
    body = _money_in(doc, mapping, refs)
    body["memo"] = f"WARP prepaid top-up {payload.get('transaction_id', '')}".strip()
    return [ErpWrite(RECORD_TYPES[CUSTOMER_DEPOSIT], doc.doc_id, body)]


def _customer_refund(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    payload = doc.payload
    refunded = str(payload["refunds"])
    writes: list[ErpWrite] = []
    deposit = payload.get("refunds_type") == CUSTOMER_DEPOSIT
    if payload.get("payment_applies_to") and not deposit:
        # what the reversal took from invoices comes off the payment's applications first
        lines = [{"doc": _ref(refs, str(item["invoice_number"])), "apply": _money(item["amount"]) > 0,
                  "amount": _money(item["amount"])} for item in payload["payment_applies_to"]]
        writes.append(ErpWrite(RECORD_TYPES[CUSTOMER_PAYMENT], refunded, {"apply": {"items": lines}}))
    line = {"doc": _ref(refs, refunded), "apply": True, "amount": _money(payload["amount"])}
    body = _money_movement(doc, mapping, refs)
    body["memo"] = f"WARP {payload.get('reversal_id', doc.doc_id)} of {refunded}"
    body["deposit" if deposit else "apply"] = {"items": [line]}
    writes.append(ErpWrite(RECORD_TYPES[CUSTOMER_REFUND], doc.doc_id, body))
    return writes


def _journal_entry(doc: OutboxDocument, mapping: ErpMapping, refs: Mapping[str, str]) -> list[ErpWrite]:
    payload = doc.payload
    entries = payload.get("entries", [payload])
    writes = []
    for number, entry in enumerate(entries, start=1):
        lines = []
        for line in entry["lines"]:
            item: dict[str, Any] = {"account": {"id": mapping.account(line["account"], doc.doc_id)},
                                    "memo": line.get("memo", "")}
            if line.get("debit") is not None:
                item["debit"] = _money(line["debit"])
            else:
                item["credit"] = _money(line["credit"])
            lines.append(item)
        external_id = doc.doc_id if number == 1 else f"{doc.doc_id}#{number}"
        body = {"externalId": external_id, "tranDate": entry["date"], "memo": entry.get("memo", ""),
                "subsidiary": {"id": mapping.subsidiary_for(doc.customer_id)},
                "currency": {"id": mapping.currency(payload.get("currency", "USD"), doc.doc_id)},
                "line": {"items": lines}}
        writes.append(ErpWrite(RECORD_TYPES[JOURNAL_ENTRY], external_id, body))
    return writes


_BUILDERS = {CUSTOMER: _customer, INVOICE: _invoice, CREDIT_MEMO: _credit_memo,
             CUSTOMER_PAYMENT: _customer_payment, CUSTOMER_DEPOSIT: _customer_deposit,
             CUSTOMER_REFUND: _customer_refund, JOURNAL_ENTRY: _journal_entry}
