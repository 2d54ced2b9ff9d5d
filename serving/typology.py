"""Suspected typology of an account, from the features of its riskiest recent payment.

Simple, documented rules (first match wins); an investigator's recorded outcome or typology
overrides them (see :func:`from_case`):

1. ``account_takeover`` — a debit in a foreign session or within 24 h of a foreign login,
   from a device new in the last 24 h, to a first-time beneficiary.
2. ``shell_business`` — a business account with foreign logins in 7 days and pass-through
   (debits ÷ credits over 24 h) of at least 0.8.
3. ``mule`` — at least 3 distinct senders in 24 h and pass-through of at least 0.5, or money
   leaving within an hour on average (mean dwell < 3600 s) with 3+ senders in 7 days.
4. ``scam_victim`` — a debit to a first-time beneficiary of at least 5× the account's 30-day
   median amount.
5. ``unusual_activity`` — anything else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from models.scored import STORE_FEATURES

TYPOLOGIES = ("account_takeover", "shell_business", "mule", "scam_victim", "unusual_activity")

# The features the store keeps per scored payment (for typology, evidence and the detail page):
# one list, owned by the scored-payment contract.
KEY_FEATURES = STORE_FEATURES


def feature_value(features: Mapping[str, float], name: str) -> float:
    """A stored feature as a number: missing, null (nan in the engine) or not a number is 0."""
    value = features.get(name, 0.0)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(value) else value


def classify(features: Mapping[str, float]) -> str:
    debit = feature_value(features, "is_debit") > 0
    first_cp = feature_value(features, "first_payment_to_cp") > 0
    pass_through = feature_value(features, "pass_through_24h")
    foreign_recent = (feature_value(features, "session_foreign") > 0
                      or feature_value(features, "foreign_logins_24h") > 0)
    if debit and foreign_recent and feature_value(features, "new_device_24h") > 0 and first_cp:
        return "account_takeover"
    if (feature_value(features, "is_business") > 0
            and feature_value(features, "foreign_logins_7d") > 0 and pass_through >= 0.8):
        return "shell_business"
    senders_24h = feature_value(features, "distinct_senders_24h")
    dwell = features.get("mean_dwell_secs_7d")
    fast_out = dwell is not None and not math.isnan(float(dwell)) and float(dwell) < 3600
    if (senders_24h >= 3 and pass_through >= 0.5) or (
        fast_out and feature_value(features, "distinct_senders_7d") >= 3
    ):
        return "mule"
    if debit and first_cp and feature_value(features, "amount_ratio_median_30d") >= 5:
        return "scam_victim"
    return "unusual_activity"


def from_case(rule_based: str, outcome: str | None, case_typology: str | None) -> str:
    """An investigator's typology wins, then a confirmed mule, then the rules."""
    if case_typology:
        return case_typology
    if outcome == "confirmed_mule":
        return "mule"
    return rule_based
