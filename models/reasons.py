"""Reason codes: one phrase an investigator understands per feature of the vector.

A phrase states the fact the model looked at ("11 distinct senders in 24 h"), never the
model's internals. Every name of :data:`features.vector.FEATURE_NAMES` has a template here
(a unit test checks it), plus :data:`ANOMALY_FEATURE` for the unsupervised component.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from features.events import Payment, WatchEntry
from features.reference import ReferenceData
from features.vector import CHANNEL_CODES, FEATURE_NAMES
from models.app_reasons import APP_TEMPLATES
from models.device_reasons import DEVICE_TEMPLATES

_VN = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh: UTC+7 all year

ANOMALY_FEATURE = "anomaly_score"
_CHANNEL_NAMES = {code: name for name, code in CHANNEL_CODES.items()}


@dataclass(frozen=True, slots=True)
class Reason:
    """One positive contribution to a payment's risk, with its human-readable text."""

    feature: str
    value: float
    contribution: float
    text: str

    def as_dict(self) -> dict[str, object]:
        value = None if math.isnan(self.value) else self.value
        return {"feature": self.feature, "value": value,
                "contribution": self.contribution, "text": self.text}


# ------------------------------------------------------------------ value formatting


def vnd(x: float) -> str:
    """An amount in readable VND: ``350 k VND``, ``12.5 M VND``, ``1.2 bn VND``."""
    if math.isnan(x):
        return "an unknown amount"
    a = abs(x)
    if a >= 1e9:
        return f"{x / 1e9:.1f} bn VND"
    if a >= 1e6:
        return f"{x / 1e6:.1f} M VND"
    if a >= 1e3:
        return f"{x / 1e3:.0f} k VND"
    return f"{x:.0f} VND"


def duration(seconds: float) -> str:
    """A duration in the largest sensible unit: ``45 s``, ``6 min``, ``3.2 h``, ``2.5 days``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _n(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _plural(x: float, word: str, plural: str | None = None) -> str:
    if math.isnan(x):
        return f"an unknown number of {plural or word + 's'}"
    return f"{_n(x)} {word if x == 1 else (plural or word + 's')}"


def _yes(x: float) -> bool:
    return not math.isnan(x) and x >= 0.5


Template = Callable[[float], str]

_WINDOW_TEXT = {"10m": "10 min", "1h": "1 h", "24h": "24 h", "7d": "7 days"}


def _count(noun: str, window: str) -> Template:
    return lambda v: f"{_plural(v, noun + ' payment')} in {window}"


def _sum(noun: str, window: str) -> Template:
    return lambda v: f"{vnd(v)} {noun} in {window}"


def _velocity_templates() -> dict[str, Template]:
    out: dict[str, Template] = {}
    for direction, noun in (("debit", "outgoing"), ("credit", "incoming")):
        for label, text in _WINDOW_TEXT.items():
            out[f"{direction}_count_{label}"] = _count(noun, text)
            out[f"{direction}_sum_{label}"] = _sum(noun, text)
    return out


def _since_prev(v: float) -> str:
    if math.isnan(v):
        return "first payment seen on this account"
    return f"{duration(v)} since the previous payment"


def _dwell(v: float) -> str:
    if math.isnan(v):
        return "no incoming money before this payment"
    return f"money forwarded {duration(v)} after it arrived"


def _mean_dwell(v: float) -> str:
    if math.isnan(v):
        return "no forwarding of incoming money in 7 days"
    return f"incoming money forwarded after {duration(v)} on average (7 days)"


def _mins_foreign(v: float) -> str:
    if math.isnan(v):
        return "no login from abroad on record"
    return f"last login from abroad {duration(v * 60)} before this payment"


def _channel(v: float) -> str:
    if math.isnan(v):
        return "unknown channel"
    return f"paid through the {_CHANNEL_NAMES.get(int(v), 'unknown')} channel"


def _ratio(v: float) -> str:
    if math.isnan(v):
        return "no 30-day payment history to compare the amount with"
    return f"amount {v:.1f}x the account's 30-day median"


def _zscore(v: float) -> str:
    if math.isnan(v):
        return "no 30-day payment history to compare the amount with"
    return f"amount {v:+.1f} standard deviations from the account's 30-day mean"


def _age(what: str, unit: str, suffix: str, unknown: str) -> Template:
    def text(v: float) -> str:
        if math.isnan(v):
            return unknown
        return f"{what} {_plural(round(v), unit)}{suffix}"

    return text


def _beneficiaries(v: float) -> str:
    return _plural(v, "different beneficiary", "different beneficiaries")


def _nan_or(template: Template, missing: str) -> Template:
    def text(v: float) -> str:
        return missing if math.isnan(v) else template(v)

    return text


def _days_ago(v: float) -> str:
    if v < 1:
        return f"{duration(v * 86400)} ago"
    return f"{_plural(round(v), 'day')} ago"


_FRAUD_WINDOW_TEXT = {"1d": "24 h", "7d": "7 days", "30d": "30 days"}
_FRAUD_SIDE_TEXT = {"received": ("received", "from victims"), "sent": ("sent", "")}


def _fraud_history_templates() -> dict[str, Template]:
    """Phrases of ``[cp_]fraud_{received|sent}_{count|sum|share}_{window}``."""
    out: dict[str, Template] = {}
    for who, prefix in (("counterparty", "cp_"), ("account", "")):
        for side, (verb, _) in _FRAUD_SIDE_TEXT.items():
            for window, text in _FRAUD_WINDOW_TEXT.items():
                def count(v: float, who: str = who, verb: str = verb, text: str = text) -> str:
                    return (f"{who} {verb} {_plural(v, 'payment')} confirmed as fraud"
                            f" (paid in the last {text})")

                def total(v: float, who: str = who, verb: str = verb, text: str = text) -> str:
                    return f"{who} {verb} {vnd(v)} confirmed as fraud in the last {text}"

                def share(v: float, verb: str = verb, text: str = text) -> str:
                    return (f"{v * 100:.0f}% of the payments the account {verb} in the last"
                            f" {text} confirmed as fraud")

                out[f"{prefix}fraud_{side}_count_{window}"] = count
                out[f"{prefix}fraud_{side}_sum_{window}"] = total
                if not prefix:
                    out[f"fraud_{side}_share_{window}"] = share
    return out


def _credits_from_flagged(v: float) -> str:
    text = f"{_plural(v, 'payment')} received from flagged or watch-listed accounts in 7 days"
    if not math.isnan(v) and v > 3:
        text += " (more than three: a Circular 17/2024 sign)"
    return text


TEMPLATES: dict[str, Template] = {
    **_velocity_templates(),
    "distinct_cp_out_24h": lambda v: f"paid {_beneficiaries(v)} in 24 h",
    "distinct_cp_out_7d": lambda v: f"paid {_beneficiaries(v)} in 7 days",
    "amount": lambda v: f"payment of {vnd(v)}",
    "is_debit": lambda v: "money leaving the account" if _yes(v) else "money arriving",
    "amount_ratio_median_30d": _ratio,
    "amount_zscore_30d": _zscore,
    "secs_since_prev_payment": _since_prev,
    "first_payment_to_cp": lambda v: "first payment to this beneficiary" if _yes(v)
    else "beneficiary paid before",
    "local_hour": lambda v: f"made at {int(v):02d}h Vietnam time" if not math.isnan(v)
    else "time of day unknown",
    "is_night": lambda v: "made at night (Vietnam time)" if _yes(v) else "made in daytime",
    "round_amount": lambda v: "round amount" if _yes(v) else "non-round amount",
    "channel_code": _channel,
    "distinct_senders_24h": lambda v: f"{_plural(v, 'distinct sender')} in 24 h",
    "distinct_senders_7d": lambda v: f"{_plural(v, 'distinct sender')} in 7 days",
    "pass_through_24h": _nan_or(
        lambda v: f"{v * 100:.0f}% of the money received in 24 h sent on",
        "nothing received in 24 h"),
    "dwell_secs": _dwell,
    "mean_dwell_secs_7d": _mean_dwell,
    "first_time_sender_share_7d": _nan_or(
        lambda v: f"{v * 100:.0f}% of incoming payments in 7 days from first-time senders",
        "no incoming payments in 7 days"),
    "cp_flagged": lambda v: "counterparty confirmed as a mule or fraudster, reported as a"
    " fraud beneficiary, or on the watch list" if _yes(v) else "counterparty not flagged",
    **_fraud_history_templates(),
    "cp_days_since_fraud_received": _nan_or(
        lambda v: f"counterparty received confirmed scam money {_days_ago(v)}",
        "counterparty never reported for receiving scam money"),
    "cp_watchlisted": lambda v: "beneficiary on the watch list (SIMO, police or another bank)"
    if _yes(v) else "beneficiary not on the watch list",
    "cp_days_since_listed": _nan_or(
        lambda v: f"beneficiary on the watch list since {_days_ago(v)}",
        "beneficiary not on the watch list"),
    "credits_from_flagged_7d": _credits_from_flagged,
    "debits_to_flagged_7d": lambda v: f"{_plural(v, 'payment')} sent to flagged accounts"
    " in 7 days",
    "account_flagged": lambda v: "account confirmed as a mule or fraudster, reported as a"
    " fraud beneficiary, or on the watch list" if _yes(v) else "account not flagged",
    "days_since_fraud_received": _nan_or(
        lambda v: f"account received confirmed scam money {_days_ago(v)}",
        "account never reported for receiving scam money"),
    "account_watchlisted": lambda v: "account holder on the watch list (SIMO, police or"
    " another bank; Circular 17/2024 sign)" if _yes(v) else "account not on the watch list",
    "account_days_since_listed": _nan_or(
        lambda v: f"account on the watch list since {_days_ago(v)}",
        "account not on the watch list"),
    "foreign_logins_24h": lambda v: f"{_plural(v, 'login')} from abroad in 24 h",
    "foreign_logins_7d": lambda v: f"{_plural(v, 'login')} from abroad in 7 days",
    "distinct_login_countries_7d": lambda v: f"logins from {_plural(v, 'country', 'countries')}"
    " in 7 days",
    "mins_since_foreign_login": _mins_foreign,
    "session_foreign": lambda v: "paid from a session abroad" if _yes(v)
    else "paid from a session in the home country",
    "new_device_24h": lambda v: f"{_plural(v, 'new device')} in 24 h" if not math.isnan(v)
    else "device history unknown",
    "failed_logins_24h": lambda v: f"{_plural(v, 'failed login')} in 24 h",
    "fast_country_change_7d": lambda v: f"{_plural(v, 'country change')} faster than travel"
    " allows in 7 days",
    "business_x_foreign_7d": lambda v: f"business account with {_plural(v, 'login')} from"
    " abroad in 7 days",
    "account_unknown": lambda v: "account not in the bank's account list" if _yes(v)
    else "known account",
    "is_business": lambda v: "business account" if _yes(v) else "personal account",
    "account_age_days": _age("account opened", "day", " ago", "account opening date unknown"),
    "business_age_days": _age("business registered", "day", " ago",
                              "business registration date unknown"),
    "customer_age_years": _age("customer aged", "year", "", "customer age unknown"),
    # Vietnamese rules
    "online_debit_sum_today": lambda v: f"{vnd(v)} sent online today"
    + (" (above the 20 M VND daily biometric threshold, Decision 2345/QD-NHNN)"
       if not math.isnan(v) and v > 20e6 else ""),
    "online_debit_count_today": lambda v: f"{_plural(v, 'online transfer')} today",
    "over_10m_online": lambda v: "online transfer above 10 M VND (biometric check required,"
    " Decision 2345/QD-NHNN)" if _yes(v) else "online transfer of 10 M VND or less",
    "just_under_10m": lambda v: "transfer just under the 10 M VND biometric threshold"
    " (Decision 2345/QD-NHNN): possible structuring" if _yes(v)
    else "not just under the 10 M VND threshold",
    "near_10m_debits_today": lambda v: f"{_plural(v, 'online transfer')} of 9-10 M VND today,"
    " just under the biometric threshold",
    "online_debit_today_vs_20m": lambda v: f"today's online transfers at {v * 100:.0f}% of the"
    " 20 M VND daily biometric threshold" if not math.isnan(v) else "no online transfers today",
    "just_under_20m_today": lambda v: "today's online transfers just under the 20 M VND daily"
    " biometric threshold (Decision 2345/QD-NHNN): possible structuring" if _yes(v)
    else "today's total not just under 20 M VND",
    "debit_from_new_device": _nan_or(
        lambda v: "transfer from a device the account never used before (Decision 2345/QD-NHNN"
        " asks for a biometric check)" if _yes(v) else "transfer from a known device",
        "device of the payment unknown"),
    "device_age_days": _nan_or(
        lambda v: "payment from a device first used on this account today (the quiet account"
        " takeover's sign)" if v < 1 else f"payment from a device first used on this account"
        f" {v:.0f} days ago" if v < 30 else "payment from a device in use for 30 days or more",
        "device of the payment unknown"),
    "fan_in_cash_out_24h": lambda v: "money received from several accounts and moved out at"
    " once, leaving little (Circular 17/2024 sign)" if _yes(v)
    else "no fan-in and cash-out in 24 h",
    "young_or_old_credit_7d": _nan_or(
        lambda v: f"{vnd(v)} received in 7 days by a holder under 23 or over 65: unusual for"
        " the holder's age (Circular 17/2024 sign)" if v > 0
        else "holder's age gives no concern", "customer age unknown"),
    "business_new_12m": _nan_or(
        lambda v: "organisation founded or onboarded within 12 months (risk assessment"
        " required, Circular 77/2025)" if _yes(v) else "not a business under 12 months old",
        "account not in the bank's account list"),
    **DEVICE_TEMPLATES,
    **APP_TEMPLATES,
    ANOMALY_FEATURE: lambda v: f"unusual account behaviour (anomaly score {v:.2f})",
}


_WATCH_SOURCES = {"simo": "SIMO", "police": "the police"}


def watchlist_phrase(entry: WatchEntry, beneficiary: bool = True) -> str:
    """An investigator's sentence for a watch-list entry: ``beneficiary reported to SIMO on
    12/03 for receiving scam money`` (the local date, Asia/Ho_Chi_Minh)."""
    who = "beneficiary" if beneficiary else "account holder"
    local = entry.listed_at.astimezone(_VN)
    source = _WATCH_SOURCES.get(entry.source.lower(), entry.source)
    reason = entry.reason.strip()
    tail = f" for {reason}" if reason else ""
    return f"{who} reported to {source} on {local:%d/%m}{tail}"


def watchlist_reasons(ref: ReferenceData, payment: Payment) -> list[str]:
    """The watch-list sentences for a payment, as of its time: its beneficiary's entry and its
    account holder's, e.g. ``beneficiary reported to SIMO on 12/03 for receiving scam money``
    (empty when neither is listed)."""
    out = []
    entry = ref.watch_entry(payment.counterparty_account, payment.t)
    if entry is not None:
        out.append(watchlist_phrase(entry, beneficiary=True))
    entry = ref.watch_entry(payment.account_id, payment.t)
    if entry is not None:
        out.append(watchlist_phrase(entry, beneficiary=False))
    return out


# the vector's watch-list features of each party: a model reason on one of them is the one the
# sentence replaces; else the sentence is a reason of its own under the first name
_WATCH_FEATURES = {True: ("cp_watchlisted", "cp_days_since_listed"),
                   False: ("account_watchlisted", "account_days_since_listed")}


def with_watchlist(reasons: Sequence[Any], ref: ReferenceData, payment: Payment) -> list[Any]:
    """An alert's reasons with the watch-list sentence of its beneficiary and of its account
    holder when listed as of the payment's time (:func:`watchlist_reasons`): a model reason on
    that party's watch-list feature gets the sentence as its text; otherwise the sentence is
    appended as a reason of its own (value 1, contribution nan — it is no model contribution,
    written ``null``). One function for the live scorer and any replay through it."""
    out = list(reasons)
    for beneficiary, account in ((True, payment.counterparty_account),
                                 (False, payment.account_id)):
        entry = ref.watch_entry(account, payment.t)
        if entry is None:
            continue
        text = watchlist_phrase(entry, beneficiary=beneficiary)
        names = _WATCH_FEATURES[beneficiary]
        for i, r in enumerate(out):
            if r.feature in names:
                out[i] = Reason(r.feature, r.value, r.contribution, text)
                break
        else:
            out.append(Reason(names[0], 1.0, math.nan, text))
    return out


def phrase(feature: str, value: float) -> str:
    """The investigator's phrase for ``feature`` taking ``value`` (never raises)."""
    template = TEMPLATES.get(feature)
    if template is None:
        return f"{feature} = {value:g}"
    try:
        text = template(float(value))
    except (ValueError, OverflowError):
        return f"{feature} = {value:g}"
    return text


def missing_templates() -> list[str]:
    """Names of the engine's features without a phrase (empty when the catalogue is covered)."""
    return [name for name in FEATURE_NAMES if name not in TEMPLATES]
