"""The feature vector: a stable, versioned list of names and a frozen tuple of values.

Models record ``FEATURE_NAMES`` and ``FEATURE_VERSION`` and refuse vectors of another layout.
Bump ``FEATURE_VERSION`` whenever a name, its order or its meaning changes.

Missing values are ``nan`` (LightGBM treats them as missing): e.g. seconds since the previous
payment of an account that has none.
"""

from __future__ import annotations

from dataclasses import dataclass

# 3: shared devices and IPs (DEVICE_NAMES), device_age_days; 4: cp_other_payers_7d;
# 5: the mobile app's device-risk signals (APP_SIGNAL_NAMES); 6: cp_other_payers_90d (payee
# sightings counted per clock day, kept 91 days; cp_other_payers_7d's window starts at a clock
# day instead of an hour)
FEATURE_VERSION = "6"

WINDOWS: tuple[tuple[str, float], ...] = (
    ("10m", 600.0),
    ("1h", 3600.0),
    ("24h", 86400.0),
    ("7d", 7 * 86400.0),
)
HISTORY_S = 30 * 86400.0  # the longest look-back (amount history, first-counterparty memory)


def _velocity_names() -> tuple[str, ...]:
    names = []
    for label, _ in WINDOWS:
        for direction in ("debit", "credit"):
            names.append(f"{direction}_count_{label}")
            names.append(f"{direction}_sum_{label}")
    return tuple(names)


VELOCITY_NAMES = _velocity_names() + (
    "distinct_cp_out_24h",
    "distinct_cp_out_7d",
    "amount",
    "is_debit",
    "amount_ratio_median_30d",
    "amount_zscore_30d",
    "secs_since_prev_payment",
    "first_payment_to_cp",
    "local_hour",
    "is_night",
    "round_amount",
    "channel_code",
)

MULE_NAMES = (
    "distinct_senders_24h",
    "distinct_senders_7d",
    "pass_through_24h",
    "dwell_secs",
    "mean_dwell_secs_7d",
    "first_time_sender_share_7d",
)

FRAUD_WINDOWS = ("1d", "7d", "30d")  # look-backs over confirmed-fraud payments' own times


def _fraud_history_names(prefix: str, share: bool) -> tuple[str, ...]:
    """``{prefix}fraud_{received|sent}_{count|sum[|share]}_{1d|7d|30d}``, in the order of
    :meth:`features.reference.ReferenceData.fraud_history` (received first, by window)."""
    names = []
    for side in ("received", "sent"):
        for window in FRAUD_WINDOWS:
            names.append(f"{prefix}fraud_{side}_count_{window}")
            names.append(f"{prefix}fraud_{side}_sum_{window}")
            if share:
                names.append(f"{prefix}fraud_{side}_share_{window}")
    return tuple(names)


# the payment's counterparty: flagged, confirmed fraud it received / sent, the watch list
COUNTERPARTY_NAMES = (
    "cp_flagged",
    *_fraud_history_names("cp_", share=False),
    "cp_days_since_fraud_received",
    "cp_watchlisted",
    "cp_days_since_listed",
    "credits_from_flagged_7d",
    "debits_to_flagged_7d",
)

# the payment's own account: the same history (it has received fraud: a mule), with the share
# of its own payments of the window that are confirmed fraud
ACCOUNT_RISK_NAMES = (
    "account_flagged",
    *_fraud_history_names("", share=True),
    "days_since_fraud_received",
    "account_watchlisted",
    "account_days_since_listed",
)

LOGIN_NAMES = (
    "foreign_logins_24h",
    "foreign_logins_7d",
    "distinct_login_countries_7d",
    "mins_since_foreign_login",
    "session_foreign",
    "new_device_24h",
    "failed_logins_24h",
    "fast_country_change_7d",
    "business_x_foreign_7d",
)

ACCOUNT_NAMES = (
    "account_unknown",
    "is_business",
    "account_age_days",
    "business_age_days",
    "customer_age_years",
)

# Vietnamese rules: Decision 2345/QD-NHNN (biometric authentication above 10 M VND per online
# transfer, 20 M VND a day, first transfer on a new device), Circular 17/2024/TT-NHNN (signs of
# a suspicious payment account), Circular 77/2025/TT-NHNN (organisations under 12 months)
VN_RULE_NAMES = (
    "online_debit_sum_today",
    "online_debit_count_today",
    "over_10m_online",
    "just_under_10m",
    "near_10m_debits_today",
    "online_debit_today_vs_20m",
    "just_under_20m_today",
    "debit_from_new_device",
    "device_age_days",
    "fan_in_cash_out_24h",
    "young_or_old_credit_7d",
    "business_new_12m",
)

# shared devices and IPs (features.devices): other accounts seen on this payment's device / IP,
# flagged ones among them, a business account run from a shared device (item 9a); other
# customers who paid this payment's beneficiary (payee sightings of the same table)
DEVICE_NAMES = (
    "device_accounts_24h",
    "device_accounts_7d",
    "ip_accounts_24h",
    "ip_accounts_7d",
    "device_flagged_accounts_7d",
    "ip_flagged_accounts_7d",
    "business_shared_device_7d",
    "business_shared_device_foreign_7d",
    "cp_other_payers_7d",
    "cp_other_payers_90d",
)

# the mobile app's device-risk signals of the payment itself (its optional ``on_call`` and
# ``remote_access`` fields; nan when the payment does not report them) and, for each, the two
# interactions an investigator reads: during a debit to a counterparty the account had no
# payment with in 30 days (impersonation scams keep the victim on the line while they pay a
# new beneficiary), and during a debit far above the usual amount (a coached victim, or a
# takeover through remote control). Per payment: no per-account state.
APP_SIGNAL_NAMES = (
    "on_call",
    "remote_access",
    "on_call_first_payment_to_cp",
    "on_call_large_debit",
    "remote_access_first_payment_to_cp",
    "remote_access_large_debit",
)
FAR_ABOVE_USUAL = 3.0  # "far above usual": at least 3x the account's 30-day median debit

FEATURE_NAMES: tuple[str, ...] = (
    VELOCITY_NAMES + MULE_NAMES + COUNTERPARTY_NAMES + ACCOUNT_RISK_NAMES + LOGIN_NAMES
    + ACCOUNT_NAMES + VN_RULE_NAMES + DEVICE_NAMES + APP_SIGNAL_NAMES
)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
CHANNEL_CODES = {"mobile": 0, "internet": 1, "atm": 2, "branch": 3, "pos": 4, "api": 5}


@dataclass(frozen=True, slots=True)
class FeatureVector:
    """Feature values of one payment in ``FEATURE_NAMES`` order."""

    values: tuple[float, ...]

    names = FEATURE_NAMES
    version = FEATURE_VERSION

    def __post_init__(self) -> None:
        if len(self.values) != len(FEATURE_NAMES):
            raise ValueError(f"expected {len(FEATURE_NAMES)} values, got {len(self.values)}")

    def __getitem__(self, name: str) -> float:
        return self.values[FEATURE_INDEX[name]]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values, strict=True))


def check_layout(names: tuple[str, ...] | list[str], version: str) -> None:
    """Raise ``ValueError`` unless ``names``/``version`` match this engine's vector layout."""
    if version != FEATURE_VERSION:
        raise ValueError(
            f"feature version mismatch: model has {version!r}, engine has {FEATURE_VERSION!r}"
        )
    if tuple(names) != FEATURE_NAMES:
        missing = sorted(set(FEATURE_NAMES) - set(names))
        extra = sorted(set(names) - set(FEATURE_NAMES))
        raise ValueError(
            f"feature names mismatch: missing {missing[:5]}, unexpected {extra[:5]}"
            + ("" if missing or extra else " (same names, different order)")
        )
