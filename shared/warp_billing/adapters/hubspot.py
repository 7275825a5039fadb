"""HubSpot CRM v3 batch upsert (the ``Crm`` port): ``POST /crm/v3/objects/{type}/batch/upsert``.

Body ``{"inputs": [{"id", "idProperty", "properties"}]}`` (at most 100), a private app token as
Bearer. 200/201/207 are done; 429 raises ``CrmThrottled`` with the ``Retry-After`` seconds (1 when
absent) so the task handler answers 429 and Cloud Tasks retries; 5xx and network errors are
transient; other 4xx are ``CrmRefused`` with HubSpot's message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import requests

from ..charging.errors import TransientCode, TransientError
from ..dunning.crm import MAX_BATCH, CrmRefused, CrmThrottled


class CrmUnavailable(TransientError):
    def __init__(self, detail: str):
        super().__init__(TransientCode.ALERTS_UNAVAILABLE, f"HubSpot: {detail}")


class HubSpotClient:
    def __init__(self, base_url: str, token: Callable[[], str], *, timeout_s: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self._session: requests.Session | None = None

    def batch_upsert(self, object_type: str, id_property: str, inputs: Sequence[Mapping]) -> None:
        if not 1 <= len(inputs) <= MAX_BATCH:
            raise CrmRefused(f"a batch upsert takes 1..{MAX_BATCH} inputs, not {len(inputs)}")
        if self._session is None:
            self._session = requests.Session()
        url = f"{self.base_url}/crm/v3/objects/{object_type}/batch/upsert"
        body = {"inputs": [{"id": item["id"], "idProperty": item.get("idProperty", id_property),
                            "properties": item.get("properties", {})} for item in inputs]}
        try:
            response = self._session.post(url, json=body, timeout=self.timeout_s,
                                          headers={"Authorization": f"Bearer {self._token()}"})
        except requests.RequestException as exc:
            raise CrmUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (200, 201, 207):
            return
        if response.status_code == 429:
            raise CrmThrottled(_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 500:
            raise CrmUnavailable(f"HTTP {response.status_code}")
        raise CrmRefused(f"HTTP {response.status_code}: {response.text[:300]}")


def _retry_after(value: str | None) -> int:
    try:
        return max(1, int(float(value))) if value else 1
    except ValueError:
        return 1
