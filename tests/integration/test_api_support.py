"""Helpers shared by the API tests (no tests here): a real SQLite store and scored records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from canhgiac.settings import Settings
from features.events import Account, Label, Login
from features.vector import FEATURE_NAMES
from serving.app import create_app
from serving.store import CaseStore

BASE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROLES = ("viewer", "investigator", "supervisor", "admin")


MULE_REASONS = [{"feature": "distinct_senders_24h", "value": 7.0, "contribution": 0.4,
                 "text": "7 người gửi khác nhau trong 24 giờ"},
                {"feature": "pass_through_24h", "value": 0.95, "contribution": 0.2,
                 "text": "tiền vào rồi chuyển đi ngay"}]


def scored(event_id: str, account_id: str, score: float, t: datetime, *,
           direction: str = "credit", amount: float = 5_000_000.0,
           description: str | None = "chuyển tiền học phí tháng 3",
           features: dict[str, float] | None = None, country: str | None = "VN",
           counterparty: str = "0123456789", on_call: bool | None = None,
           remote_access: bool | None = None, counterparty_bank: str = "VCB",
           device_id: str = "dev-1", ip: str = "14.160.1.2",
           reasons: list[dict[str, Any]] | None = None, model_version: str = "7",
           thresholds: tuple[float, float] = (0.5, 0.8)) -> dict[str, Any]:
    """A scored payment as the scorer writes it; ``reasons`` default to two mule reasons and
    the decision follows ``thresholds`` (review, hold)."""
    vector = dict.fromkeys(FEATURE_NAMES, 0.0)
    vector.update(features or {})
    payment = {
        "event_id": event_id, "ts": t.isoformat(), "account_id": account_id,
        "direction": direction, "amount": amount, "currency": "VND",
        "counterparty_account": counterparty, "counterparty_bank": counterparty_bank,
        "channel": "mobile", "ip": ip, "device_id": device_id,
    }
    if country:
        payment["country"] = country
    if description:
        payment["description"] = description
    for name, flag in (("on_call", on_call), ("remote_access", remote_access)):
        if flag is not None:  # absent = not reported by the app
            payment[name] = flag
    return {
        "event_id": event_id, "account_id": account_id, "ts": t.isoformat(), "score": score,
        "decision": "hold" if score >= thresholds[1] else "review" if score >= thresholds[0]
        else "allow",
        "reasons": [dict(r) for r in MULE_REASONS] if reasons is None else reasons,
        "model_version": model_version, "scored_at": (t + timedelta(seconds=1)).isoformat(),
        "payment": payment, "features": vector,
    }


def account(account_id: str, type_: str = "personal", kyc: str = "VN") -> Account:
    return Account(account_id, f"cus-{account_id}", type_, BASE - timedelta(days=30), kyc)


def login(event_id: str, account_id: str, country: str, t: datetime,
          success: bool = True, ip: str = "103.9.76.1", device_id: str = "dev-x") -> Login:
    return Login(event_id, t, account_id, success, ip, country, device_id, "mobile")


@dataclass
class Api:
    client: TestClient
    store: CaseStore
    keys: dict[str, str] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


class RecordingPublisher:
    """An in-memory ActionPublisher for the HTTP tests (the Kafka one is tested on a broker)."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []
        self.labels: list[Label] = []

    def publish_action(self, action: dict[str, Any]) -> bool:
        self.actions.append(action)
        return True

    def publish_label(self, label: Label) -> bool:
        self.labels.append(label)
        return True

    def close(self) -> None:
        return None


def make_api(tmp_path: Path, publisher: Any = None, url: str | None = None,
             **settings: Any) -> Api:
    """An app on a real store: SQLite in ``tmp_path`` unless ``url`` (PostgreSQL) is given.

    Keys: one per role (user = role name), ``investigator2`` / ``supervisor2`` held by other
    people, and ``supervisor-laptop``: a second key of the user ``supervisor``."""
    store = CaseStore(url or f"sqlite:///{tmp_path / 'cases.db'}")
    app = create_app(Settings(data_dir=tmp_path, **settings), store=store,
                     action_publisher=publisher)
    api = Api(TestClient(app, raise_server_exceptions=False), store)
    for role in ROLES:
        api.keys[role] = store.create_key(role, role)[1]
    api.keys["investigator2"] = store.create_key("investigator2", "investigator")[1]
    api.keys["supervisor2"] = store.create_key("supervisor2", "supervisor")[1]
    api.keys["supervisor-laptop"] = store.create_key("supervisor-laptop", "supervisor",
                                                     user="Supervisor")[1]
    return api


def seed(store: CaseStore) -> None:
    """Three accounts: a business mule-ish account with a foreign login, two personal ones."""
    store.upsert_accounts([account("biz-1", "business"), account("per-1"), account("per-2")])
    store.write_scored([
        scored("e1", "biz-1", 0.55, BASE, features={"distinct_senders_24h": 7,
                                                    "pass_through_24h": 0.9}),
        scored("e2", "biz-1", 0.93, BASE + timedelta(hours=2),
               features={"distinct_senders_24h": 8, "pass_through_24h": 0.95,
                         "is_business": 1.0, "foreign_logins_7d": 1.0}),
        scored("e3", "per-1", 0.70, BASE + timedelta(hours=1), direction="debit"),
        scored("e4", "per-2", 0.10, BASE + timedelta(hours=3)),
    ])
    store.write_logins([login("l1", "biz-1", "KH", BASE - timedelta(hours=1)),
                        login("l2", "biz-1", "VN", BASE - timedelta(hours=2)),
                        login("l3", "per-1", "VN", BASE)])
