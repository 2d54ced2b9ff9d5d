"""Evaluation on a time window, and the rules baseline evaluated the same way.

All budget metrics rank the window's payments by score and flag the top ``budget`` share
(ties broken by time order, so integer-valued rule scores are handled deterministically).

* ``roc_auc``, ``average_precision``;
* ``precision_at_budget_X`` / ``recall_at_budget_X`` for 0.1 %, 0.5 %, 1 % of payments;
* ``amount_recall_at_budget_X``: share of the fraudulent money flagged at each budget;
* ``recall_typology_<name>_at_budget_X``: recall per typology (quiet variants are typologies of
  their own) at each budget; ``recall_typology_<name>`` is the one at the 0.5 % budget;
  ``n_typology_<name>``: the typology's fraudulent payments in the window (what each recall is
  a share of: a recall over a handful of payments is a weak figure);
* ``precision_at_K_accounts_per_day`` (K = 20, 100): each local day, accounts ranked by their
  highest payment score; precision of the top K (an account is a hit when one of its payments
  that day is fraudulent), averaged over days (the Fraud Detection Handbook's card precision@k);
* ``account_ranking_precision_at_K`` (K = 20, 100): the ranking ``GET /v1/accounts/high-risk``
  serves — at the end of each local day, every account seen so far scored by its highest payment
  score in the 7 days up to its latest payment — precision of its top K (a hit: the account has
  a fraudulent payment in the window), averaged over days; ``..._decayed_...`` the same with the
  score halved per ``DECAY_HALF_LIFE_DAYS`` of inactivity since that latest payment;
* ``known_beneficiary_recall_at_budget_X``: recall, at each budget, of the payments of the
  reported-beneficiary typologies (``reported_beneficiary`` and ``reported_beneficiary_quiet``)
  made when their beneficiary had already been reported — a confirmed ``fraud``/``mule`` label
  on a payment it received or on the account, or a watch-list entry, at or before the payment's
  time (``EvalSet.cp_reported_t``, from :func:`training.dataset.reported_since`);
  ``n_known_beneficiary`` counts them (the issue's target: >= 90 % at the 1 % budget);
* ``median_minutes_to_first_alert``: per fraudulent account, from its first fraudulent payment
  in the window to the first flagged payment of that account (0.5 % budget) at or after it;
  ``campaigns_alerted_share`` is the share of those accounts flagged at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from features.vector import FEATURE_INDEX
from models.ranking import RISK_HALF_LIFE_DAYS
from models.thresholds import top_k
from training.dataset import EvalSet

BUDGETS = (0.001, 0.005, 0.01)
MAIN_BUDGET = 0.005
ACCOUNTS_PER_DAY = 100
ACCOUNT_KS = (20, 100)
RANKING_WINDOW_S = 7 * 86400.0  # serving/risk.py: the highest score of the last 7 days
DECAY_HALF_LIFE_DAYS = RISK_HALF_LIFE_DAYS  # what GET /v1/accounts/high-risk ranks by
LOCAL_OFFSET_S = 7 * 3600.0  # Asia/Ho_Chi_Minh, no daylight saving
KNOWN_BENEFICIARY_TYPOLOGIES = ("reported_beneficiary", "reported_beneficiary_quiet")
KEY_METRICS = ("roc_auc", "average_precision", "recall_at_budget_0_5pct",
               "precision_at_100_accounts_per_day")


def budget_suffix(budget: float) -> str:
    """0.005 → ``0_5pct``, 0.01 → ``1pct``."""
    pct = f"{budget * 100:g}"
    return pct.replace(".", "_") + "pct"


def flagged_mask(scores: np.ndarray, budget: float) -> np.ndarray:
    k = top_k(scores.size, budget)
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(scores.size, dtype=bool)
    mask[order[:k]] = True
    return mask


def precision_at_accounts_per_day(scores: np.ndarray, ev: EvalSet,
                                  k: int = ACCOUNTS_PER_DAY) -> float:
    frame = pd.DataFrame({
        "day": np.floor((ev.t + LOCAL_OFFSET_S) / 86400.0).astype(np.int64),
        "account": ev.account_ids, "score": scores, "y": ev.y.astype(np.int8),
    })
    per_account = frame.groupby(["day", "account"], sort=False).agg(
        score=("score", "max"), y=("y", "max")).reset_index()
    per_account = per_account.sort_values(["day", "score"], ascending=[True, False],
                                          kind="stable")
    top = per_account.groupby("day", sort=True).head(k)
    per_day = top.groupby("day")["y"].mean()
    return float(per_day.mean()) if len(per_day) else math.nan


def account_ranking_precision(scores: np.ndarray, ev: EvalSet, k: int,
                              half_life_days: float | None = None) -> float:
    """Precision of the top ``k`` of the account ranking at the end of each local day (see the
    module docstring), averaged over days; ``half_life_days`` decays an account's score with
    the time since its latest payment."""
    if scores.size == 0:
        return math.nan
    frame = pd.DataFrame({"account": ev.account_ids, "t": ev.t, "score": scores})
    involved = set(frame["account"][ev.y.astype(bool)])
    day = np.floor((ev.t + LOCAL_OFFSET_S) / 86400.0)
    precisions = []
    for d in np.unique(day):
        end = (d + 1) * 86400.0 - LOCAL_OFFSET_S
        seen = frame[frame["t"] < end]
        last = seen.groupby("account")["t"].transform("max")
        recent = seen[seen["t"] > last - RANKING_WINDOW_S]
        per = recent.groupby("account").agg(score=("score", "max"), last=("t", "max"))
        ranked = per["score"].to_numpy()
        if half_life_days is not None:
            idle_days = (end - per["last"].to_numpy()) / 86400.0
            ranked = ranked * 0.5 ** (idle_days / half_life_days)  # models.ranking.faded
        order = np.argsort(-ranked, kind="stable")[:k]
        top = per.index.to_numpy()[order]
        precisions.append(float(np.mean([a in involved for a in top])) if top.size else 0.0)
    return float(np.mean(precisions))


def minutes_to_first_alert(flagged: np.ndarray, ev: EvalSet) -> tuple[float, float]:
    """(median minutes from each fraudulent account's first fraud to its first alert,
    share of fraudulent accounts alerted at all)."""
    frame = pd.DataFrame({"account": ev.account_ids, "t": ev.t, "y": ev.y, "f": flagged})
    first_fraud = frame[frame["y"] == 1].groupby("account")["t"].min()
    if first_fraud.empty:
        return math.nan, math.nan
    alerts = frame[frame["f"]].merge(first_fraud.rename("t0"), left_on="account",
                                     right_index=True)
    alerts = alerts[alerts["t"] >= alerts["t0"]]
    delay = (alerts.groupby("account")["t"].min() - first_fraud.reindex(
        alerts["account"].unique())) / 60.0
    share = float(delay.size / first_fraud.size)
    return (float(delay.median()) if delay.size else math.nan), share


def known_beneficiary_rows(ev: EvalSet) -> np.ndarray | None:
    """Fraudulent payments of the reported-beneficiary typologies whose counterparty had been
    reported at or before the payment (None when the window has no ``cp_reported_t``)."""
    if ev.cp_reported_t is None:
        return None
    typ = np.array(["" if v is None else str(v) for v in ev.typology], dtype=object)
    return ((ev.y == 1) & np.isin(typ, KNOWN_BENEFICIARY_TYPOLOGIES)
            & (ev.cp_reported_t <= ev.t))


def evaluate(scores: np.ndarray, ev: EvalSet) -> dict[str, float]:
    """Every metric of the module docstring for one score vector on one window."""
    y = ev.y.astype(np.int8)
    n_pos = int(y.sum())
    out: dict[str, float] = {"n_payments": float(y.size), "n_positive": float(n_pos)}
    both = 0 < n_pos < y.size
    out["roc_auc"] = float(roc_auc_score(y, scores)) if both else math.nan
    out["average_precision"] = float(average_precision_score(y, scores)) if both else math.nan
    main_mask = None
    masks = {}
    fraud_amount = float(ev.amounts[y == 1].sum())
    for budget in BUDGETS:
        mask = masks[budget] = flagged_mask(scores, budget)
        hits = int(y[mask].sum())
        suffix = budget_suffix(budget)
        out[f"precision_at_budget_{suffix}"] = hits / int(mask.sum())
        out[f"recall_at_budget_{suffix}"] = hits / n_pos if n_pos else math.nan
        out[f"amount_recall_at_budget_{suffix}"] = (
            float(ev.amounts[(y == 1) & mask].sum()) / fraud_amount if fraud_amount
            else math.nan)
        if budget == MAIN_BUDGET:
            main_mask = mask
    assert main_mask is not None
    for k in ACCOUNT_KS:
        out[f"precision_at_{k}_accounts_per_day"] = precision_at_accounts_per_day(scores, ev, k)
    for k in ACCOUNT_KS:
        out[f"account_ranking_precision_at_{k}"] = account_ranking_precision(scores, ev, k)
        out[f"account_ranking_decayed_precision_at_{k}"] = account_ranking_precision(
            scores, ev, k, DECAY_HALF_LIFE_DAYS)
    known = known_beneficiary_rows(ev)
    if known is not None:
        out["n_known_beneficiary"] = float(known.sum())
        for budget in BUDGETS:
            out[f"known_beneficiary_recall_at_budget_{budget_suffix(budget)}"] = (
                float(masks[budget][known].mean()) if known.any() else math.nan)
    median, share = minutes_to_first_alert(main_mask, ev)
    out["median_minutes_to_first_alert"] = median
    out["campaigns_alerted_share"] = share
    typ = np.array(["" if v is None else str(v) for v in ev.typology], dtype=object)
    for name in sorted(set(typ[y == 1]) - {""}):
        rows = (y == 1) & (typ == name)
        out[f"n_typology_{name}"] = float(rows.sum())
        out[f"recall_typology_{name}"] = float(main_mask[rows].mean())
        for budget in BUDGETS:
            out[f"recall_typology_{name}_at_budget_{budget_suffix(budget)}"] = float(
                masks[budget][rows].mean())
    return out


def typology_table(model: dict[str, float], baseline: dict[str, float]) -> str:
    """Recall per typology at each budget, model / rules baseline, one row per typology, with
    the number of the typology's fraudulent payments in the window (``n``)."""
    names = sorted({k[len("recall_typology_"):].split("_at_budget_")[0]
                    for k in model if k.startswith("recall_typology_")})
    if not names:
        return "(no fraudulent payments in the test window)"
    width = max(len(n) for n in names)
    heads = [budget_suffix(b) for b in BUDGETS]
    lines = [f"{'typology'.ljust(width)}  {'n':>5}  " + "  ".join(f"{h:>15}" for h in heads),
             f"{'':{width}}  {'':>5}  " + "  ".join(f"{'model / rules':>15}" for _ in heads)]
    for name in names:
        n = model.get(f"n_typology_{name}")
        cells = [f"{'-' if n is None else int(n):>5}"]
        for h in heads:
            key = f"recall_typology_{name}_at_budget_{h}"
            cells.append(f"{_fmt(model.get(key)):>7} / {_fmt(baseline.get(key)):>6}")
        lines.append(f"{name.ljust(width)}  {cells[0]}  "
                     + "  ".join(f"{c:>15}" for c in cells[1:]))
    return "\n".join(lines)


# ---------------------------------------------------------------------- rules baseline


@dataclass(frozen=True)
class Rules:
    """Simple rules a bank might already run; a payment's score counts the rules it breaks."""

    large_ratio: float = 10.0  # new beneficiary and amount > 10x the 30-day median
    fan_in_senders: float = 5.0  # many distinct senders in 24 h ...
    fast_forward_s: float = 3600.0  # ... and money forwarded within an hour
    foreign_large_ratio: float = 3.0  # foreign login + new device + amount > 3x median

    def hits(self, X: np.ndarray) -> dict[str, np.ndarray]:
        def col(name: str, fill: float) -> np.ndarray:
            return np.nan_to_num(X[:, FEATURE_INDEX[name]], nan=fill)

        debit = col("is_debit", 0.0) >= 0.5
        ratio = col("amount_ratio_median_30d", 0.0)
        foreign = (col("foreign_logins_24h", 0.0) >= 1) | (col("session_foreign", 0.0) >= 0.5)
        return {
            "new_beneficiary_large_amount": debit & (col("first_payment_to_cp", 0.0) >= 0.5)
            & (ratio > self.large_ratio),
            "fan_in_fast_forward": debit & (col("distinct_senders_24h", 0.0)
                                            >= self.fan_in_senders)
            & (col("dwell_secs", math.inf) < self.fast_forward_s),
            "foreign_login_new_device_large_debit": debit & foreign
            & (col("new_device_24h", 0.0) >= 1) & (ratio > self.foreign_large_ratio),
            "counterparty_flagged": (col("cp_flagged", 0.0) >= 0.5)
            | (col("cp_fraud_received_count_30d", 0.0) > 0),
            # the app's device-risk signals (what banks' apps warn about since Decision 2345)
            "on_call_first_payment_to_cp": col("on_call_first_payment_to_cp", 0.0) >= 0.5,
            "remote_access_large_debit": col("remote_access_large_debit", 0.0) >= 0.5,
        }

    def score(self, X: np.ndarray) -> np.ndarray:
        """Rules broken, plus a tie-break by amount below one rule: ``0..1``."""
        hits = self.hits(X)
        count = np.sum([h.astype(np.float64) for h in hits.values()], axis=0)
        amount = np.nan_to_num(X[:, FEATURE_INDEX["amount"]], nan=0.0)
        tiebreak = np.clip(np.log1p(np.maximum(amount, 0.0)) / 40.0, 0.0, 0.99)
        out: np.ndarray = (count + tiebreak) / (len(hits) + 1.0)
        return out


def metric_table(model: dict[str, float], baseline: dict[str, float]) -> str:
    """A plain-text table: metric, model, rules baseline."""
    skip = ("n_payments", "n_positive")

    def shown(n: str) -> bool:  # per-typology recall per budget and counts: in typology_table
        return n not in skip and not n.startswith("n_typology_") and not (
            n.startswith("recall_typology_") and "_at_budget_" in n)

    names = [n for n in model if shown(n)]
    names += [n for n in baseline if n not in model and shown(n)]
    width = max(len(n) for n in names)
    lines = [f"{'metric'.ljust(width)}  {'model':>10}  {'baseline':>10}",
             f"{'-' * width}  {'-' * 10}  {'-' * 10}"]
    for name in names:
        lines.append(f"{name.ljust(width)}  {_fmt(model.get(name)):>10}  "
                     f"{_fmt(baseline.get(name)):>10}")
    lines.append(f"(test window: {int(model.get('n_payments', 0))} payments, "
                 f"{int(model.get('n_positive', 0))} fraudulent)")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
