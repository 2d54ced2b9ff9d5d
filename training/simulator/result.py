"""The outcome of one simulation: the contract tables plus ground truth and a summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from training.simulator.config import SimConfig
from training.simulator.typologies.base import TYPOLOGIES


@dataclass(frozen=True)
class SimulationResult:
    """Tables in the event contracts (timestamps ``timestamp[us, tz=UTC]``), rows in event-time
    order (labels by ``confirmed_at``); ``truth`` per payment and ``accounts_truth`` per account
    are the simulator's ground truth."""

    config: SimConfig
    payments: pa.Table
    logins: pa.Table
    accounts: pa.Table
    labels: pa.Table
    truth: pa.Table
    accounts_truth: pa.Table
    cases: dict[str, int] = field(default_factory=dict)
    watchlist: pa.Table | None = None  # SIMO's entries for reported mules and beneficiaries

    def tables(self) -> dict[str, pa.Table]:
        """File stem → table, in the layout of DESIGN.md."""
        out = {
            "payments": self.payments, "logins": self.logins, "accounts": self.accounts,
            "labels": self.labels, "truth": self.truth, "accounts_truth": self.accounts_truth,
        }
        if self.watchlist is not None:
            out["watchlist"] = self.watchlist
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for the CLI table: events, accounts, fraud rate, per typology."""
        n = self.payments.num_rows
        fraud = int(pc.sum(self.truth["is_fraud"]).as_py() or 0) if n else 0
        per_typ = {name: 0 for name in TYPOLOGIES}
        if n:
            counts = pc.value_counts(self.truth["typology"].drop_null())
            for item in counts.to_pylist():
                per_typ[item["values"]] = int(item["counts"])
        roles: dict[str, int] = {}
        for item in pc.value_counts(self.accounts_truth["role"]).to_pylist():
            roles[item["values"]] = int(item["counts"])
        labels: dict[str, int] = {}
        if self.labels.num_rows:
            for item in pc.value_counts(self.labels["label"]).to_pylist():
                labels[item["values"]] = int(item["counts"])
        return {
            "payments": n,
            "logins": self.logins.num_rows,
            "accounts": self.accounts.num_rows,
            "labels": self.labels.num_rows,
            "fraud_payments": fraud,
            "fraud_rate": fraud / n if n else 0.0,
            "typology_payments": per_typ,
            "typology_cases": {name: self.cases.get(name, 0) for name in TYPOLOGIES},
            "roles": dict(sorted(roles.items())),
            "label_kinds": dict(sorted(labels.items())),
            "watchlist": self.watchlist.num_rows if self.watchlist is not None else 0,
        }
