"""Reason phrases of the shared-device / shared-IP features (features.devices), merged into
:data:`models.reasons.TEMPLATES`."""

from __future__ import annotations

import math
from collections.abc import Callable

from features.devices import PAYEE_CAP

Template = Callable[[float], str]


def _accounts(v: float) -> str:
    return f"{v:.0f} other account" + ("" if v == 1 else "s")


def _seen_on(what: str, window: str) -> Template:
    def text(v: float) -> str:
        if math.isnan(v):
            return f"{what} of the payment unknown"
        if v <= 0:
            return f"{what} used by no other account in {window}"
        return f"{what} also used by {_accounts(v)} in {window} (one identifier shared" \
               " across accounts: a Circular 17/2024 sign)"
    return text


def _flagged_on(what: str) -> Template:
    def text(v: float) -> str:
        if math.isnan(v):
            return f"{what} of the payment unknown"
        if v <= 0:
            return f"no flagged account on this {what} in 7 days"
        return f"{what} used in the last 7 days by {_accounts(v)} confirmed as mule or" \
               " fraudster, reported for receiving scam money, or on the watch list"
    return text


def _business_shared(v: float) -> str:
    if math.isnan(v):
        return "device of the payment unknown"
    if v <= 0:
        return "not a business account run from a shared device"
    return f"business account operated from a device shared with {_accounts(v)} in 7 days" \
           " (item 9a, Official Dispatch 139/CĐ-TTg)"


def _business_shared_foreign(v: float) -> str:
    if math.isnan(v):
        return "device of the payment unknown"
    if v < 0.5:
        return "no business account on a shared device with logins from abroad"
    return "business account operated from a shared device and logged in from abroad in" \
           " 7 days (item 9a, Official Dispatch 139/CĐ-TTg)"


def _other_payers(window: str, nobody: str, sign: str = "") -> Template:
    """cp_other_payers_<window>: ``nobody`` when no other customer paid the beneficiary."""
    def phrase(v: float) -> str:
        if math.isnan(v):
            return "not a transfer to a beneficiary"
        if v <= 0:
            return nobody
        who = f"{v:.0f} or more other customers" if v >= PAYEE_CAP else \
            f"{v:.0f} other customer" + ("" if v == 1 else "s")
        return f"beneficiary also paid by {who} of this bank in {window}{sign}"
    return phrase


DEVICE_TEMPLATES: dict[str, Template] = {
    "device_accounts_24h": _seen_on("device", "24 h"),
    "device_accounts_7d": _seen_on("device", "7 days"),
    "ip_accounts_24h": _seen_on("IP address", "24 h"),
    "ip_accounts_7d": _seen_on("IP address", "7 days"),
    "device_flagged_accounts_7d": _flagged_on("device"),
    "ip_flagged_accounts_7d": _flagged_on("IP address"),
    "business_shared_device_7d": _business_shared,
    "business_shared_device_foreign_7d": _business_shared_foreign,
    "cp_other_payers_7d": _other_payers(
        "7 days", "no other customer of this bank paid this beneficiary in 7 days",
        " (money from many accounts into one: a Circular 17/2024 sign)"),
    "cp_other_payers_90d": _other_payers(
        "90 days", "beneficiary new to the whole bank: no other customer paid it in 90 days"
        " (where impersonation scams send their victims)"),
}
