"""Reason phrases of the mobile app's device-risk signals (``features.vector.APP_SIGNAL_NAMES``),
merged into :data:`models.reasons.TEMPLATES`.

Since Decision 2345/QD-NHNN, Vietnamese banks' apps watch the phone during a transfer: an
active call (impersonation scammers keep the victim on the line, and several banks' apps warn
"you are on a call" before a transfer) and a remote-access or screen-sharing app running
(AnyDesk, TeamViewer, UltraViewer: banks block or flag them). A value is nan when the payment
did not report the signal (no app session: branch, API, internet banking)."""

from __future__ import annotations

import math
from collections.abc import Callable

from features.vector import FAR_ABOVE_USUAL

Template = Callable[[float], str]

_NOT_REPORTED = "not reported by the app (no mobile app session)"


def _signal(yes: str, no: str, what: str) -> Template:
    def text(v: float) -> str:
        if math.isnan(v):
            return f"{what} {_NOT_REPORTED}"
        return yes if v >= 0.5 else no
    return text


APP_TEMPLATES: dict[str, Template] = {
    "on_call": _signal(
        "the customer was on a phone call during the transfer (reported by the bank's app)",
        "no phone call during the transfer", "phone-call state"),
    "remote_access": _signal(
        "a remote-access or screen-sharing app (AnyDesk, TeamViewer, UltraViewer…) was running"
        " during the transfer: someone else may be controlling the phone",
        "no remote-access app running during the transfer", "remote-access state"),
    "on_call_first_payment_to_cp": _signal(
        "the customer was on a phone call during a first transfer to a new payee — typical of"
        " impersonation scams (the scammer keeps the victim on the line)",
        "not a first transfer to a new payee made during a phone call", "phone-call state"),
    "on_call_large_debit": _signal(
        "the customer was on a phone call during a transfer far above their usual amount"
        f" ({FAR_ABOVE_USUAL:.0f}x the 30-day median or more) — a scammer may be coaching them",
        "not a transfer far above the usual amount made during a phone call",
        "phone-call state"),
    "remote_access_first_payment_to_cp": _signal(
        "a remote-access app was running during a first transfer to a new payee — someone"
        " else may be sending the money from the customer's phone",
        "no remote-access app during a first transfer to a new payee", "remote-access state"),
    "remote_access_large_debit": _signal(
        "a remote-access app was running during a transfer far above the customer's usual"
        f" amount ({FAR_ABOVE_USUAL:.0f}x the 30-day median or more) — typical of a takeover"
        " through remote control or of a victim coached by a scammer",
        "no remote-access app during a transfer far above the usual amount",
        "remote-access state"),
}
