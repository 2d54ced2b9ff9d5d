"""The unsupervised component: an IsolationForest on account-behaviour features.

It sees no labels, so it can flag behaviour the labels have not caught up with yet (a new mule
ring). Its score (``0..1``, higher = more isolated) is an extra input of the LightGBM model;
:class:`models.risk.RiskModel` keeps it only when it improves validation average precision.

Persistence uses plain arrays (``anomaly.npz``, no pickle): the node tables of scikit-learn's
trees, rebuilt into ``sklearn.tree._tree.Tree`` objects on load so scoring runs in C.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.tree._tree import Tree

from features.vector import FEATURE_INDEX

# Behaviour of the account around the payment: volumes, fan-in/fan-out, forwarding speed,
# logins from abroad and account age. Not the payment's own descriptors.
BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "debit_count_24h", "debit_sum_24h", "credit_count_24h", "credit_sum_24h",
    "debit_count_7d", "debit_sum_7d", "credit_count_7d", "credit_sum_7d",
    "distinct_cp_out_24h", "distinct_cp_out_7d",
    "distinct_senders_24h", "distinct_senders_7d", "pass_through_24h", "dwell_secs",
    "mean_dwell_secs_7d", "first_time_sender_share_7d",
    "foreign_logins_7d", "distinct_login_countries_7d", "new_device_24h",
    "failed_logins_24h", "account_age_days",
)
MISSING = -1.0  # log-transformed features are >= 0, so -1 marks "missing" unambiguously


def _euler_path(n: np.ndarray) -> np.ndarray:
    """Average path length of an unsuccessful search in a BST of ``n`` points (c(n))."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    depth = np.zeros(left.size, dtype=np.float64)
    for node in range(left.size):  # children always have larger ids than their parent
        if left[node] >= 0:
            depth[left[node]] = depth[node] + 1
            depth[right[node]] = depth[node] + 1
    return depth


def behaviour_matrix(X: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    """The float32 input of the forest: signed log1p of the chosen columns, NaN → -1."""
    sub = X[:, columns]
    out = np.sign(sub) * np.log1p(np.abs(sub))
    out[np.isnan(out)] = MISSING
    return np.ascontiguousarray(out, dtype=np.float32)


@dataclass
class AnomalyScorer:
    """A fitted isolation forest, reduced to what scoring needs."""

    feature_names: tuple[str, ...]
    trees: list[Tree]
    leaf_values: list[np.ndarray]  # per tree: depth + c(n_node_samples) per node
    max_samples: int
    params: dict[str, Any]

    @property
    def columns(self) -> tuple[int, ...]:
        return tuple(FEATURE_INDEX[name] for name in self.feature_names)

    @classmethod
    def fit(cls, X: np.ndarray, *, seed: int, n_estimators: int = 100,
            max_samples: int = 256, max_rows: int = 200_000) -> AnomalyScorer:
        names = tuple(n for n in BEHAVIOUR_FEATURES if n in FEATURE_INDEX)
        columns = tuple(FEATURE_INDEX[n] for n in names)
        rng = np.random.default_rng(seed)
        rows = X if X.shape[0] <= max_rows else X[rng.choice(X.shape[0], max_rows, replace=False)]
        forest = IsolationForest(n_estimators=n_estimators, max_samples=max_samples,
                                 random_state=seed, n_jobs=1)
        forest.fit(behaviour_matrix(rows, columns))
        trees, leaf_values = [], []
        for estimator in forest.estimators_:
            tree = estimator.tree_
            depth = _node_depths(tree.children_left, tree.children_right)
            leaf_values.append(depth + _euler_path(tree.n_node_samples))
            trees.append(tree)
        return cls(names, trees, leaf_values, int(forest.max_samples_),
                   {"n_estimators": n_estimators, "max_samples": max_samples, "seed": seed})

    def score(self, X: np.ndarray) -> np.ndarray:
        """Anomaly score per row in ``0..1`` (2^-mean path length/c(max_samples))."""
        data = behaviour_matrix(X, self.columns)
        depths = np.zeros(data.shape[0], dtype=np.float64)
        for tree, values in zip(self.trees, self.leaf_values, strict=True):
            depths += values[tree.apply(data)]
        denominator = len(self.trees) * float(_euler_path(np.array([self.max_samples]))[0])
        if denominator == 0:
            return np.ones_like(depths)
        result: np.ndarray = np.power(2.0, -depths / denominator)
        return result

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> dict[str, Any]:
        states = [tree.__reduce__()[2] for tree in self.trees]
        offsets = np.cumsum([0] + [s["node_count"] for s in states])
        np.savez_compressed(
            path,
            nodes=np.concatenate([s["nodes"] for s in states]),
            values=np.concatenate([s["values"] for s in states]),
            leaf_values=np.concatenate(self.leaf_values),
            offsets=offsets,
            max_depths=np.array([s["max_depth"] for s in states]),
        )
        return {"file": path.name, "feature_names": list(self.feature_names),
                "max_samples": self.max_samples, "params": self.params,
                "n_features": len(self.feature_names)}

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> AnomalyScorer:
        with np.load(path, allow_pickle=False) as z:
            nodes, values, leaf, offsets, depths = (
                z["nodes"], z["values"], z["leaf_values"], z["offsets"], z["max_depths"])
        n_features = int(meta["n_features"])
        trees, leaf_values = [], []
        for i in range(len(offsets) - 1):
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            tree = Tree(n_features, np.array([1], dtype=np.intp), 1)
            try:
                tree.__setstate__({"max_depth": int(depths[i]), "node_count": hi - lo,
                                   "nodes": nodes[lo:hi].copy(), "values": values[lo:hi].copy()})
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"anomaly component unreadable: {exc}") from exc
            trees.append(tree)
            leaf_values.append(leaf[lo:hi].copy())
        return cls(tuple(meta["feature_names"]), trees, leaf_values, int(meta["max_samples"]),
                   dict(meta["params"]))

