"""A small mule ring in a real case store, written through the store's own write methods."""

from __future__ import annotations

from datetime import timedelta

from serving.store import CaseStore
from tests.integration.test_api_support import BASE, account, login, scored

MODEL = {"review": 0.5, "hold": 0.8}


def seed_ring(store: CaseStore) -> None:
    """``biz-1`` (a business logging in from Cambodia) collects from three senders and passes
    the money to ``mule-2``, which passes it to ``mule-3``; ``per-9`` is a quiet account."""
    store.upsert_accounts([account("biz-1", "business"), account("mule-2"), account("mule-3"),
                           account("per-9")])
    records = []
    for i, sender in enumerate(["0901", "0902", "0903"]):
        records.append(scored(f"in-{i}", "biz-1", 0.55 + 0.1 * i, BASE + timedelta(hours=i),
                              counterparty=sender, amount=9_000_000.0))
    records += [
        scored("out-1", "biz-1", 0.93, BASE + timedelta(hours=4), direction="debit",
               counterparty="mule-2", amount=26_000_000.0),
        scored("mid-1", "mule-2", 0.62, BASE + timedelta(hours=4, minutes=5),
               counterparty="biz-1", amount=26_000_000.0),
        scored("mid-2", "mule-2", 0.71, BASE + timedelta(hours=5), direction="debit",
               counterparty="mule-3", amount=25_000_000.0),
        scored("end-1", "mule-3", 0.40, BASE + timedelta(hours=5, minutes=3),
               counterparty="mule-2", amount=25_000_000.0),
        scored("q-1", "per-9", 0.05, BASE + timedelta(hours=6)),
    ]
    store.write_scored(records)
    store.write_logins([login("l1", "biz-1", "KH", BASE - timedelta(hours=1)),
                        login("l2", "biz-1", "VN", BASE - timedelta(hours=3)),
                        login("l3", "mule-2", "VN", BASE)])
    store.set_model_info("7", {"test_average_precision": 0.61}, MODEL)
