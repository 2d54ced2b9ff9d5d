"""A small demo bank for the README's screenshots: about 330 accounts with two weeks of
payments and logins, a mule ring, shell businesses logging in from abroad, scam victims on a
call, a taken-over account and many quiet customers, plus the model in force.

Everything is fixed (a seeded random generator, fixed times), so every run writes the same data.
It goes in through the case store's own write methods, with the record and login builders of
the API tests (tests/integration/test_api_support.py); the reason texts are the scorer's own
(:func:`models.reasons.phrase`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from features.events import Account, Login
from models.reasons import phrase
from serving.store import CaseStore
from tests.integration.test_api_support import login, scored

# the demo's "now": Monday 16/02/2026 10:00 in Hà Nội (03:00 UTC)
NOW = datetime(2026, 2, 16, 3, 0, tzinfo=UTC)
REVIEW, HOLD = 0.35, 0.72
VERSION = "3"
# the test metrics of the demo model in the README ("Real output of make demo"), a subset
METRICS = {"test_roc_auc": 0.9963, "test_average_precision": 0.7128,
           "test_precision_at_budget_0_5pct": 0.7514, "test_recall_at_budget_0_5pct": 0.6878,
           "test_account_ranking_precision_at_20": 0.5894}
OTHER_BANKS = ("VCB", "TCB", "ACB", "MB", "BIDV", "VPB", "TPB")
CONTRIBUTIONS = (0.31, 0.17, 0.09, 0.05)


@dataclass(frozen=True, slots=True)
class Cast:
    """The accounts the screenshots visit."""

    mule: str  # collects from strangers and passes the money on: the case of the screenshots
    second_mule: str
    third_mule: str
    business: str  # a shell business logging in from Cambodia


def reasons(**features: float) -> list[dict[str, Any]]:
    """The scorer's reasons for these feature values, strongest first."""
    return [{"feature": name, "value": value, "contribution": c, "text": phrase(name, value)}
            for (name, value), c in zip(features.items(), CONTRIBUTIONS, strict=False)]


class Bank:
    """Builds the demo's accounts, payments and logins with one seeded generator."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.accounts: list[Account] = []
        self.records: list[dict[str, Any]] = []
        self.logins: list[Login] = []
        self._n = 0

    def number(self) -> str:
        return str(self.rng.randrange(10**11, 10**12))

    def account(self, type_: str = "personal", age_days: int = 400, kyc: str = "VN") -> str:
        account_id = self.number()
        customer = f"C01{self.rng.randrange(10**7):07d}"
        self.accounts.append(Account(account_id, customer, type_, NOW - timedelta(days=age_days),
                                     kyc, registered_at=NOW - timedelta(days=age_days)
                                     if type_ == "business" else None))
        return account_id

    def pay(self, account_id: str, score: float, t: datetime, *, out: bool = False,
            amount: float, to: str | None = None, bank: str | None = None,
            why: dict[str, float] | None = None, note: str = "chuyen tien",
            device: str = "", on_call: bool | None = None,
            remote: bool | None = None) -> None:
        self._n += 1
        features = {"is_debit": 1.0 if out else 0.0, **(why or {})}
        self.records.append(scored(
            f"p{self._n:05d}", account_id, score, t, direction="debit" if out else "credit",
            amount=amount, description=note, features=features,
            counterparty=to or self.number(), counterparty_bank=bank or "CGB",
            device_id=device or f"d-{account_id[-6:]}", ip=f"113.161.{self._n % 250}.7",
            on_call=on_call, remote_access=remote, reasons=reasons(**(why or {})),
            model_version=VERSION, thresholds=(REVIEW, HOLD)))

    def login(self, account_id: str, t: datetime, country: str = "VN", *, device: str = "",
              ip: str = "") -> None:
        self._n += 1
        self.logins.append(login(f"l{self._n:05d}", account_id, country, t,
                                 ip=ip or f"14.{self._n % 250}.{self._n % 97}.3",
                                 device_id=device or f"d-{account_id[-6:]}"))

    def other_bank(self) -> str:
        return self.rng.choice(OTHER_BANKS)

    def usual(self, account_id: str, t: datetime) -> None:
        """An ordinary bill payment (the previous week's risk the list's trend compares to)."""
        bank = self.other_bank()
        self.pay(account_id, round(self.rng.uniform(0.01, 0.12), 3), t, out=True,
                 amount=self.rng.choice((180, 450, 960)) * 1_000.0, bank=bank,
                 note="thanh toan hoa don", on_call=False, remote=False)


def _quiet(bank: Bank, n: int) -> None:
    """Customers paying bills and receiving salaries: low scores, a few near the review line."""
    for _ in range(n):
        a = bank.account(bank.rng.choice(("personal",) * 5 + ("business",)),
                         age_days=bank.rng.randrange(60, 3000))
        for _ in range(bank.rng.randrange(1, 4)):
            t = NOW - timedelta(days=bank.rng.uniform(0.5, 13), minutes=bank.rng.randrange(600))
            score = round(min(0.33, bank.rng.betavariate(0.6, 14)), 4)
            out = bank.rng.random() < 0.6
            bank.pay(a, score, t, out=out, amount=bank.rng.choice((150, 320, 1_200, 4_500))
                     * 1_000.0, bank=bank.other_bank(), note="thanh toan hoa don" if out
                     else "luong thang 1",
                     why={"amount_ratio_median_30d": round(bank.rng.uniform(1, 4), 1)}
                     if score > 0.1 else None, on_call=False if out else None,
                     remote=False if out else None)
        bank.login(a, NOW - timedelta(days=bank.rng.uniform(0.2, 6)))


def _ring(bank: Bank) -> Cast:
    """Five strangers at other banks pay ``mule``, which passes the money to ``second`` (same
    phone) and ``third`` (same home IP) within the hour; ``second`` sends it out of the bank."""
    mule, second, third = (bank.account(age_days=d) for d in (24, 61, 45))
    day = NOW - timedelta(days=2, hours=-12)  # 14/02 19:00 local
    bank.pay(mule, 0.03, NOW - timedelta(days=9), amount=190_000.0, bank="MB",
             note="hoan tien", why=None)
    bank.pay(mule, 0.05, NOW - timedelta(days=8, hours=3), out=True, amount=120_000.0,
             bank="VCB", note="nap the dien thoai", on_call=False, remote=False)
    for i, score in enumerate((0.21, 0.33, 0.46, 0.58, 0.64)):
        bank.pay(mule, score, day + timedelta(minutes=7 * i), amount=(9.5 + 2.3 * i) * 1e6,
                 bank=bank.other_bank(), note="chuyen tien mua hang",
                 why={"distinct_senders_24h": float(i + 1),
                      "first_time_sender_share_7d": 1.0, "account_age_days": 22.0})
    bank.pay(mule, 0.87, day + timedelta(minutes=41), out=True, amount=58_400_000.0, to=second,
             note="tra no", remote=True, on_call=False,
             why={"distinct_senders_24h": 5.0, "pass_through_24h": 0.96,
                  "session_foreign": 1.0, "amount_ratio_median_30d": 21.6})
    bank.pay(mule, 0.74, day + timedelta(hours=17), out=True, amount=12_000_000.0, to=third,
             note="gui em", why={"pass_through_24h": 0.91, "mean_dwell_secs_7d": 1500.0,
                                 "distinct_senders_7d": 5.0})
    bank.pay(mule, 0.02, day + timedelta(hours=20), out=True, amount=190_000.0, bank="MB",
             note="an trua", on_call=False, remote=False)
    bank.usual(second, day - timedelta(days=9))
    for k in range(2):
        bank.pay(second, 0.18, day - timedelta(days=3 - k), amount=4_000_000.0,
                 bank=bank.other_bank(), note="chuyen tien")
    bank.pay(second, 0.61, day + timedelta(minutes=42), amount=58_400_000.0, to=mule,
             note="tra no", why={"account_age_days": 61.0, "amount_ratio_median_30d": 48.7})
    for k, (score, amount) in enumerate(((0.79, 29_000_000.0), (0.77, 29_000_000.0))):
        bank.pay(second, score, day + timedelta(hours=1, minutes=10 * k), out=True,
                 amount=amount, bank=bank.other_bank(), note="thanh toan",
                 why={"pass_through_24h": 0.99, "mean_dwell_secs_7d": 2400.0,
                      "distinct_senders_7d": 3.0, "first_payment_to_cp": 1.0},
                 remote=True, on_call=False)
    bank.pay(third, 0.48, day + timedelta(hours=17, minutes=2), amount=12_000_000.0, to=mule,
             note="gui em", why={"amount_ratio_median_30d": 14.5, "account_age_days": 45.0})
    bank.pay(third, 0.44, day + timedelta(hours=18), out=True, amount=11_500_000.0,
             bank="TCB", note="rut tien", why={"pass_through_24h": 0.96})
    for d in range(10):
        bank.login(mule, NOW - timedelta(days=d, hours=2), device="d-ring-phone",
                   ip="113.190.44.21")
    bank.login(mule, day - timedelta(minutes=30), "KH", device="d-ring-phone", ip="103.197.2.8")
    bank.login(second, day + timedelta(minutes=35), device="d-ring-phone", ip="42.118.9.77")
    bank.login(third, day + timedelta(hours=16), device="d-third", ip="113.190.44.21")
    return Cast(mule, second, third, "")


def _businesses(bank: Bank) -> str:
    """Shell businesses: young, logging in from abroad, passing money straight through."""
    first = ""
    for score, age, country in ((0.93, 86, "KH"), (0.81, 152, "CN"), (0.57, 40, "SG"),
                                (0.42, 210, "KR")):
        b = bank.account("business", age_days=age)
        first = first or b
        t = NOW - timedelta(days=1, hours=age % 11)
        bank.usual(b, t - timedelta(days=10))
        for k in range(3):
            bank.pay(b, round(score * 0.6, 3), t - timedelta(hours=3 * k), amount=95e6 + 7e6 * k,
                     bank=bank.other_bank(), note="thanh toan hop dong",
                     why={"distinct_senders_24h": float(k + 1)})
        bank.pay(b, score, t + timedelta(minutes=25), out=True, amount=300e6,
                 bank=bank.other_bank(), note="chuyen ra nuoc ngoai", remote=None, on_call=None,
                 why={"business_age_days": float(age), "business_x_foreign_7d": 3.0,
                      "pass_through_24h": 0.97, "foreign_logins_7d": 3.0, "is_business": 1.0})
        for d in (1, 3, 5):
            bank.login(b, t - timedelta(days=d), country)
        bank.login(b, t - timedelta(days=2))
    return first


def _victims_and_takeover(bank: Bank) -> None:
    """Scam victims paying a new beneficiary far above their usual amount while on a call, and an
    account used from a new device abroad."""
    for score, ratio, age in ((0.84, 208.6, 4100), (0.69, 58.1, 2900), (0.38, 7.7, 1300)):
        v = bank.account(age_days=age)
        t = NOW - timedelta(hours=6 + age % 13)
        bank.usual(v, t - timedelta(days=9))
        bank.pay(v, score, t, out=True, amount=ratio * 450_000.0, bank=bank.other_bank(),
                 note="nop phat theo yeu cau co quan dieu tra", on_call=True, remote=False,
                 why={"amount_ratio_median_30d": ratio, "first_payment_to_cp": 1.0,
                      "on_call_large_debit": 1.0})
        bank.login(v, t - timedelta(minutes=20))
    for score, country in ((0.76, "PH"), (0.45, "KH")):
        a = bank.account(age_days=1500)
        t = NOW - timedelta(hours=30)
        bank.usual(a, t - timedelta(days=9))
        bank.login(a, t - timedelta(minutes=12), country, device="d-new-" + country)
        bank.pay(a, score, t, out=True, amount=37_900_000.0, bank=bank.other_bank(),
                 note="chuyen tien", device="d-new-" + country, remote=True, on_call=False,
                 why={"session_foreign": 1.0, "new_device_24h": 1.0, "first_payment_to_cp": 1.0,
                      "amount_ratio_median_30d": 37.9, "remote_access_large_debit": 1.0})


def _unusual(bank: Bank, n: int) -> None:
    """Accounts with one payment far from their habits: a round amount, at night."""
    for _ in range(n):
        a = bank.account(age_days=bank.rng.randrange(200, 3000))
        t = NOW - timedelta(hours=bank.rng.randrange(4, 60))
        bank.usual(a, t - timedelta(days=bank.rng.uniform(8, 12)))
        ratio = round(bank.rng.uniform(4, 30), 1)
        bank.pay(a, round(bank.rng.uniform(0.36, 0.62), 3), t, out=True, amount=ratio * 1e6,
                 bank=bank.other_bank(), note="chuyen khoan", on_call=False, remote=False,
                 why={"amount_ratio_median_30d": ratio, "is_night": 1.0, "round_amount": 1.0})
        bank.login(a, t - timedelta(minutes=5))


def seed_demo(store: CaseStore) -> Cast:
    """Write the demo bank into ``store`` and record the model in force; the accounts to visit."""
    bank = Bank()
    cast = _ring(bank)
    business = _businesses(bank)
    _victims_and_takeover(bank)
    _unusual(bank, 12)
    _quiet(bank, 300)
    store.upsert_accounts(bank.accounts)
    store.write_scored(bank.records)
    store.write_logins(bank.logins)
    store.set_model_info(VERSION, METRICS, {"review": REVIEW, "hold": HOLD,
                                            "model_review": REVIEW, "model_hold": HOLD},
                         at=(NOW - timedelta(days=3)).timestamp())
    return Cast(cast.mule, cast.second_mule, cast.third_mule, business)
