"""The labelled dataset, built by replaying the event log through the feature engine.

There is one feature implementation: :func:`features.replay.replay_matrix`. This module only
adds labels and cuts the replayed payments into time windows.

Time windows (payment event time, from the first to the last payment of the log)::

    | warm-up | train            | validation | gap (label delay) | test              |
    start     train_start        train_end    valid_end           cutoff              end

* warm-up: the velocity windows (up to 7 days) are still filling; rows not used. Payee and
  amount history reach back 30 days (``HISTORY_S``), so early training rows still see some
  long-standing payees as new; the test window, at the log's end, does not.
* train / validation: used to fit (validation: early stopping, calibration, thresholds,
  the anomaly-component comparison).
* gap: payments not used; it leaves labels of validation payments time to arrive. Measured
  (simulator, 10,000 accounts × 90 days, seeds 7 / 11 / 13): at the cut-off 6 / 9 / 9 % of the
  validation window's fraud is still negative only because its label comes later, against
  22 / 23 / 28 % that never gets one; a 14-day gap, or leaving unlabelled recent rows of
  flagged accounts out of fitting, did not raise the quiet typologies' recall (issue #16);
  neither did fitting on every label that ever arrives (a diagnosis with future labels: test AP
  0.928 / 0.848 / 0.900, quiet recall within the spread of model seeds).
* ``cutoff`` is the moment the model is (notionally) trained. Only labels with
  ``confirmed_at <= cutoff`` label train and validation rows: a label confirmed later does not
  exist for training, exactly as at a bank. Unlabelled payments count as negatives.
* test: evaluated against the simulator's ground truth (``truth.parquet``) when present, else
  against every label in the log (evaluation may look into the future; training may not).

Labels (``labels.parquet`` plus investigators' outcomes passed in as extra ``Label`` objects):

* event-level (``event_id`` set): that payment is positive for ``fraud``/``mule``, negative
  for ``legit`` (an investigator's "legit" overrides an account-level label for that payment);
* account-level (no ``event_id``): the account's latest account-level label known at the
  cut-off decides. If it is ``fraud``/``mule``, every payment (debit and credit) of the account
  from ``account_label_lookback_days`` before the first confirmation of that bad run onwards is
  positive — the account itself is the fraud instrument (mule, shell business). A later
  account-level ``legit`` clears it. The lookback (default 7 days) is short on purpose: before
  it the account usually still behaved as its owner's.
* the watch list (``SplitConfig.watchlist_labels``, on by default; fitting labels only): an
  entry on one of the bank's own accounts listed at or before the cut-off (a victim reported the
  account to SIMO), not delisted by then and not cleared by an account-level ``legit`` label
  confirmed at or after its listing, marks the account's payments from
  ``account_label_lookback_days`` before ``listed_at`` up to it positive (the reported activity),
  and leaves its payments from ``listed_at`` on out of training and validation (``UNKNOWN``: the
  report does not say which later payments are fraud), unless a label decides them. Mule cases
  are confirmed by the police weeks after the money moved and a quarter never are: without the
  list most mule payments of the fitting windows were negatives (seed 11, 10,000 accounts × 90
  days: 605 of 888; none of the 7 domestically run loud mules had a label), which taught the
  model that fan-in with fast pass-through from a Vietnamese session is normal. Marking the
  payments after the listing positive instead taught it that a listed account's ordinary
  payments are fraud (test AP 0.91 → 0.86 on seed 7).

Labels naming a payment that is not in the log are ignored (counted in the summary).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.events import Account, Label, Login, Payment, WatchEntry, utc_from_epoch
from features.reference import BAD_LABELS
from features.replay import reference_for, replay_matrix

log = logging.getLogger(__name__)
DAY_S = 86400.0
UNKNOWN = -1  # label_rows: a row left out of fitting (watch list: status unknown)


class DatasetError(ValueError):
    """The log cannot give the requested windows (too short, no positives, ...)."""


class EventLog(Protocol):
    """What the dataset needs of a data directory (``training.datadir.DataDir``)."""

    payments: Sequence[Payment]
    logins: Sequence[Login]
    accounts: Sequence[Account]
    labels: Sequence[Label]
    truth: pd.DataFrame | None


@dataclass(frozen=True)
class SplitConfig:
    warmup_days: float = 7.0
    valid_days: float = 14.0
    # payments between validation and test left out (label delay); 14 days: test AP
    # 0.872 / 0.888 / 0.896 against 0.914 / 0.882 / 0.898 with 7 (seeds 7 / 11 / 13), quiet
    # typologies' recall not up; 3 days: 0.886 / 0.857 / 0.883
    gap_days: float = 7.0
    test_days: float = 14.0
    # an account-level label marks the account's payments from this long before its first
    # confirmation: long enough for a mule's burst, short enough not to mark the months the
    # account was still its owner's (30 days: test AP 0.61; 7 days: 0.75, 10k-account sim)
    account_label_lookback_days: float = 7.0
    min_train_days: float = 3.0
    # a watch-list entry on one of the bank's accounts: the lookback before its listing is
    # positive, its payments after the listing are left out of fitting (module docstring)
    watchlist_labels: bool = True

    @property
    def days_needed(self) -> float:
        """The shortest log these windows fit in (with ``min_train_days`` of training)."""
        return (self.warmup_days + self.min_train_days + self.valid_days + self.gap_days
                + self.test_days)


@dataclass(frozen=True)
class Windows:
    """Window boundaries in epoch seconds (see the module docstring)."""

    start: float
    train_start: float
    train_end: float
    valid_end: float
    cutoff: float
    end: float

    @classmethod
    def from_span(cls, first_t: float, last_t: float, cfg: SplitConfig) -> Windows:
        end = last_t + 1e-6  # make the last payment part of the test window
        cutoff = end - cfg.test_days * DAY_S
        valid_end = cutoff - cfg.gap_days * DAY_S
        train_end = valid_end - cfg.valid_days * DAY_S
        train_start = first_t + cfg.warmup_days * DAY_S
        span_days = (last_t - first_t) / DAY_S
        if train_end - train_start < cfg.min_train_days * DAY_S:
            raise DatasetError(
                f"the log covers {span_days:.1f} days; warm-up {cfg.warmup_days:g} + train >= "
                f"{cfg.min_train_days:g} + validation {cfg.valid_days:g} + gap "
                f"{cfg.gap_days:g} + test {cfg.test_days:g} days need {cfg.days_needed:g}")
        return cls(first_t, train_start, train_end, valid_end, cutoff, end)

    def as_dict(self) -> dict[str, str]:
        return {k: utc_from_epoch(v).isoformat() for k, v in asdict(self).items()}

    @property
    def cutoff_dt(self) -> datetime:
        return utc_from_epoch(self.cutoff)


@dataclass
class Replayed:
    """The whole log replayed once: one row per scored payment, in scoring order."""

    X: np.ndarray
    t: np.ndarray
    event_ids: np.ndarray  # object
    account_ids: np.ndarray  # object
    amounts: np.ndarray
    counterparties: np.ndarray | None = None  # object

    def __len__(self) -> int:
        return int(self.t.size)

    @classmethod
    def from_log(cls, log_: EventLog) -> Replayed:
        # labels are answered as of each payment's time: no look-ahead
        ref = reference_for(log_.accounts, log_.labels, log_.payments,
                            getattr(log_, "watchlist", ()))
        X, scored = replay_matrix(log_.payments, log_.logins, ref)
        return cls(
            X=X,
            t=np.fromiter((p.t for p in scored), dtype=np.float64, count=len(scored)),
            event_ids=np.array([p.event_id for p in scored], dtype=object),
            account_ids=np.array([p.account_id for p in scored], dtype=object),
            amounts=np.fromiter((p.amount for p in scored), dtype=np.float64,
                                count=len(scored)),
            counterparties=np.array([p.counterparty_account for p in scored], dtype=object),
        )


@dataclass
class EvalSet:
    """Rows of one evaluation window with everything the metrics need."""

    X: np.ndarray
    y: np.ndarray
    t: np.ndarray
    account_ids: np.ndarray
    amounts: np.ndarray
    typology: np.ndarray  # object: typology name of positive rows, "" / None otherwise
    event_ids: np.ndarray
    source: str  # "truth" or "labels"
    # per row: when the payment's counterparty was first reported (:func:`reported_since`;
    # inf: never; None: not computed)
    cp_reported_t: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y.size)

    def save(self, path: Any) -> None:
        """Plain arrays (no pickle) so ``promote`` can re-score any model on the same window."""
        np.savez_compressed(
            path, X=self.X, y=self.y, t=self.t, amounts=self.amounts,
            account_ids=self.account_ids.astype(str), event_ids=self.event_ids.astype(str),
            typology=np.array(["" if v is None else str(v) for v in self.typology], dtype=str),
            source=np.array(self.source),
            **({} if self.cp_reported_t is None else {"cp_reported_t": self.cp_reported_t}))

    @classmethod
    def load(cls, path: Any) -> EvalSet:
        with np.load(path, allow_pickle=False) as z:
            return cls(X=z["X"], y=z["y"], t=z["t"], account_ids=z["account_ids"].astype(object),
                       amounts=z["amounts"], typology=z["typology"].astype(object),
                       event_ids=z["event_ids"].astype(object), source=str(z["source"]),
                       cp_reported_t=z["cp_reported_t"] if "cp_reported_t" in z else None)


@dataclass
class Dataset:
    windows: Windows
    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    test: EvalSet
    summary: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- labels


def _rows_by_account(account_ids: np.ndarray) -> dict[str, np.ndarray]:
    if account_ids.size == 0:
        return {}
    groups: dict[str, np.ndarray] = pd.Series(np.arange(account_ids.size)).groupby(
        account_ids, sort=False).indices
    return groups


def label_rows(rows: Replayed, labels: Sequence[Label], as_of: float,
               lookback_days: float, watchlist: Sequence[WatchEntry] = ()
               ) -> tuple[np.ndarray, dict[str, int]]:
    """1 / 0 per replayed row from the labels confirmed (and the ``watchlist`` entries listed)
    at or before ``as_of`` (see module doc); ``UNKNOWN`` (-1) for a row a listing leaves out of
    fitting (only ever with a ``watchlist``).

    Also returns counts: labels used, labels confirmed after ``as_of`` (ignored), labels whose
    payment is not in the log, watch-list entries used, rows left out.
    """
    y = np.zeros(len(rows), dtype=np.int8)
    known = sorted((lb for lb in labels if lb.t <= as_of), key=lambda lb: lb.t)
    stats = {"labels_used": len(known), "labels_after_cutoff": len(labels) - len(known),
             "labels_unknown_event": 0, "watchlist_labels_used": 0, "rows_left_out": 0}
    by_account = _rows_by_account(rows.account_ids)
    lookback = lookback_days * DAY_S
    # account-level: the latest label per account decides; a bad run starts at its first label
    run_start: dict[str, float | None] = {}
    cleared: dict[str, float] = {}  # an account's latest account-level legit label
    for lb in known:
        if lb.event_id is not None:
            continue
        if lb.label in BAD_LABELS:
            if run_start.get(lb.account_id) is None:
                run_start[lb.account_id] = lb.t
        else:
            run_start[lb.account_id] = None
            cleared[lb.account_id] = lb.t
    for account_id, start in run_start.items():
        idx = by_account.get(account_id)
        if start is None or idx is None:
            continue
        y[idx[rows.t[idx] >= start - lookback]] = 1
    # the watch list: reported activity before a listing, unknown status after it
    for entry in watchlist:
        idx = by_account.get(entry.account)
        listed = entry.listed_at.timestamp()
        if (idx is None or not entry.in_force(as_of)
                or cleared.get(entry.account, -math.inf) >= listed):
            continue
        stats["watchlist_labels_used"] += 1
        t = rows.t[idx]  # reported activity wins over another listing's unknown
        y[idx[(y[idx] != 1) & (t >= listed - lookback) & (t < listed)]] = 1
        y[idx[(y[idx] == 0) & (t >= listed)]] = UNKNOWN
    # event-level labels override, applied in confirmation order (the latest wins)
    position = {eid: i for i, eid in enumerate(rows.event_ids)}
    for lb in known:
        if lb.event_id is None:
            continue
        i = position.get(lb.event_id)
        if i is None:
            stats["labels_unknown_event"] += 1
            continue
        y[i] = 1 if lb.label in BAD_LABELS else 0
    stats["rows_left_out"] = int((y == UNKNOWN).sum())
    return y, stats


def _label_typologies(rows: Replayed, labels: Sequence[Label], y: np.ndarray) -> np.ndarray:
    typ = np.full(len(rows), None, dtype=object)
    by_account = _rows_by_account(rows.account_ids)
    position = {eid: i for i, eid in enumerate(rows.event_ids)}
    for lb in labels:
        if lb.label not in BAD_LABELS:
            continue
        name = lb.typology or lb.label
        if lb.event_id is not None:
            i = position.get(lb.event_id)
            if i is not None:
                typ[i] = name
        elif (idx := by_account.get(lb.account_id)) is not None:
            typ[idx] = name
    typ[y == 0] = None
    return typ


def _truth_arrays(rows: Replayed, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.DataFrame({"event_id": rows.event_ids})
    merged = frame.merge(truth[["event_id", "is_fraud", "typology"]], on="event_id",
                         how="left", validate="many_to_one")
    missing = int(merged["is_fraud"].isna().sum())
    if missing:
        log.warning("payments without ground truth counted as legitimate",
                    extra={"missing": missing})
    y = merged["is_fraud"].fillna(False).astype(bool).to_numpy().astype(np.int8)
    typ = np.array(merged["typology"].astype(object).where(merged["typology"].notna(), None),
                   dtype=object)
    typ[y == 0] = None
    return y, typ


# ---------------------------------------------------------------------- building


def reported_since(payments: Iterable[Payment], labels: Iterable[Label],
                   watchlist: Iterable[WatchEntry] = ()) -> dict[str, float]:
    """When each account was first reported as a receiver of fraud (epoch seconds), from
    everything in the log (an evaluation question, not a feature): the earliest of

    * ``confirmed_at`` of a ``fraud``/``mule`` label naming a payment it received: the named
      payment's counterparty when that payment (of the label's account) is a debit in the log,
      the label's account when it is a credit, else the label's ``counterparty_account``;
    * ``confirmed_at`` of an account-level ``fraud``/``mule`` label on it;
    * ``listed_at`` of a watch-list entry on it.

    Accounts are matched by number alone, like the features; later ``legit`` labels and
    delistings are not taken into account (the question is "had it been reported")."""
    named = {lb.event_id for lb in labels if lb.event_id is not None}
    by_event = {p.event_id: p for p in payments if p.event_id in named}
    first: dict[str, float] = {}

    def seen(account: str | None, t: float) -> None:
        if account is not None and t < first.get(account, math.inf):
            first[account] = t

    for lb in labels:
        if lb.label not in BAD_LABELS:
            continue
        if lb.event_id is None:
            seen(lb.account_id, lb.t)
            continue
        p = by_event.get(lb.event_id)
        if p is not None and p.account_id == lb.account_id:
            seen(p.counterparty_account if p.direction == "debit" else p.account_id, lb.t)
        else:
            seen(lb.counterparty_account, lb.t)
    for entry in watchlist:
        seen(entry.account, entry.listed_at.timestamp())
    return first


def build(rows: Replayed, labels: Sequence[Label], truth: pd.DataFrame | None,
          cfg: SplitConfig | None = None,
          reported: Mapping[str, float] | None = None,
          watchlist: Sequence[WatchEntry] = (),
          fit_target: np.ndarray | None = None) -> Dataset:
    """Cut the replayed log into windows and label them (see the module docstring);
    ``reported`` (:func:`reported_since`) gives the test rows' ``cp_reported_t``; ``watchlist``
    entries label accounts when ``cfg.watchlist_labels``. ``fit_target`` (0 / 1 per row, for
    what-if measurements such as ``bench.crossbank``'s ground-truth fit) replaces the labels'
    verdict on the rows fitted; the rows themselves are still the ones the labels choose."""
    cfg = cfg or SplitConfig()
    if len(rows) == 0:
        raise DatasetError("the log has no payments")
    listed = watchlist if cfg.watchlist_labels else ()
    w = Windows.from_span(float(rows.t.min()), float(rows.t.max()), cfg)
    y_fit, label_stats = label_rows(rows, labels, w.cutoff, cfg.account_label_lookback_days,
                                    listed)
    if fit_target is not None:
        if fit_target.shape != y_fit.shape:
            raise ValueError(f"fit_target: expected {y_fit.shape[0]} values, "
                             f"got {fit_target.shape}")
        y_fit = np.where(y_fit == UNKNOWN, UNKNOWN, fit_target != 0).astype(np.int8)
    train = (rows.t >= w.train_start) & (rows.t < w.train_end) & (y_fit != UNKNOWN)
    valid = (rows.t >= w.train_end) & (rows.t < w.valid_end) & (y_fit != UNKNOWN)
    test = (rows.t >= w.cutoff) & (rows.t <= w.end)
    in_fit = (rows.t >= w.train_start) & (rows.t < w.valid_end)
    label_stats["rows_left_out"] = int((in_fit & (y_fit == UNKNOWN)).sum())  # of fitting

    if truth is not None:
        y_eval, typ = _truth_arrays(rows, truth)
        source = "truth"
    else:
        y_eval, _ = label_rows(rows, labels, math.inf, cfg.account_label_lookback_days)
        typ = _label_typologies(rows, labels, y_eval)
        source = "labels"

    cp_reported_t = None
    if reported is not None and rows.counterparties is not None:
        cp_reported_t = np.fromiter(
            (reported.get(cp, math.inf) for cp in rows.counterparties[test]),
            dtype=np.float64, count=int(test.sum()))
    test_set = EvalSet(X=rows.X[test], y=y_eval[test], t=rows.t[test],
                       account_ids=rows.account_ids[test], amounts=rows.amounts[test],
                       typology=typ[test], event_ids=rows.event_ids[test], source=source,
                       cp_reported_t=cp_reported_t)
    summary = {
        "n_payments": len(rows),
        "n_train": int(train.sum()), "n_train_positive": int(y_fit[train].sum()),
        "n_valid": int(valid.sum()), "n_valid_positive": int(y_fit[valid].sum()),
        "n_test": int(test.sum()), "n_test_positive": int(test_set.y.sum()),
        "eval_source": source, **label_stats, "windows": w.as_dict(),
    }
    if truth is not None:
        # how well the labels known at the cut-off cover the truth in the fitting windows (the
        # rows a listing left out count as not covered: they are not positives in fitting)
        fit = in_fit
        summary["fit_label_recall_vs_truth"] = float(
            ((y_fit[fit] == 1) & (y_eval[fit] == 1)).sum() / max(1, y_eval[fit].sum()))
    for name in ("n_train_positive", "n_valid_positive", "n_test_positive"):
        if summary[name] == 0:
            raise DatasetError(f"no positive examples in the {name.split('_')[1]} window "
                               "(too few labels or too short a log)")
    log.info("dataset built", extra={k: v for k, v in summary.items() if k != "windows"})
    return Dataset(w, rows.X[train], y_fit[train], rows.X[valid], y_fit[valid], test_set,
                   summary)


def build_dataset(log_: EventLog, cfg: SplitConfig | None = None,
                  extra_labels: Sequence[Label] = ()) -> tuple[Replayed, Dataset]:
    """Replay the log through the feature engine once, then label and split it.

    ``extra_labels`` (investigators' outcomes) are used like ``labels.parquet`` rows — for the
    label column and, as of their confirmation time, for the counterparty-risk features.
    """
    labels = list(log_.labels) + list(extra_labels)
    replay_log = _WithLabels(log_, labels) if extra_labels else log_
    rows = Replayed.from_log(replay_log)
    watchlist = getattr(log_, "watchlist", ())
    reported = reported_since(log_.payments, labels, watchlist)
    return rows, build(rows, labels, log_.truth, cfg, reported, watchlist)


@dataclass
class _WithLabels:
    base: EventLog
    labels: Sequence[Label]

    @property
    def payments(self) -> Sequence[Payment]:
        return self.base.payments

    @property
    def logins(self) -> Sequence[Login]:
        return self.base.logins

    @property
    def accounts(self) -> Sequence[Account]:
        return self.base.accounts

    @property
    def watchlist(self) -> Sequence[WatchEntry]:
        return getattr(self.base, "watchlist", ())

    @property
    def truth(self) -> pd.DataFrame | None:
        return self.base.truth
