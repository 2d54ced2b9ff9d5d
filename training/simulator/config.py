"""The simulator's frozen configuration (:class:`SimConfig`) and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date

MAX_FRAUD_RATE = 0.01


@dataclass(frozen=True)
class AppSignalRates:
    """How often the mobile app reports an active phone call (``on_call``) and a running
    remote-access / screen-sharing app (``remote_access``) during a transfer.

    Only mobile-app debits carry the signals (the app can read the phone's call state and its
    running apps); internet banking in a browser, branch, API, card and ATM payments, and every
    credit, leave both fields absent (unknown). The rates were chosen before measuring anything
    with them, and are not tuned to a result. No bank publishes these shares; each is an
    assumption stated with its reasoning, and ``bench`` sensitivity runs show what depends on it.

    Legitimate customers (and fraudsters' own accounts acting as customers do: mules, shells):

    * ``on_call_personal`` 3 % of app payments: a phone call fills roughly 1-2 % of a
      smartphone user's waking time in Vietnam (voice and Zalo calls), and payments are more
      likely than random moments to happen during one (paying the person one is talking to,
      a shop taking an order by phone). ``on_call_elderly`` 6 %: older customers are more often
      guided through the app by a relative on the phone. ``on_call_business`` 8 %: owners pay
      suppliers while on the phone with them.
    * ``on_call_new_payee_factor`` 3x for a first transfer to a person or a business (none
      with that payee in the 30 days before; not a shop's QR code, a card, a bill or an
      e-wallet top-up): the payee is often the person on the line — a seller confirming an
      order, a landlord, a tradesman asking for a deposit. So a legitimate first payment is on a
      call in about 9 % (18 % for the elderly) of cases: the hard negatives next to scams.
    * ``remote_habit_share`` 1 % of customers (``remote_habit_share_business`` 3 % of
      businesses: IT support, shared office phones) keep a remote-access app running; it is
      detected in ``remote_habit_p`` 30 % of their sessions. Everyone else: ``remote_other_p``
      0.1 % of sessions (a one-off support session).

    Scam victims (``scam_victim`` and its quiet variant alike, decided once per case):

    * ``victim_impersonation_share`` 60 % of cases are impersonation (police, tax office, bank
      staff, relatives), whose script keeps the victim on the line until the money is sent:
      on a call in ``victim_on_call_impersonation`` 85 % of their transfers (not 100 %: the
      scammer sometimes hangs up and calls back, or calls over a VoIP app whose call state the
      bank's app does not see). The other cases are investment / "task" scams run over chat
      (Telegram, Zalo messages): on a call in ``victim_on_call_chat`` 30 % of transfers.
      Expected: about 63 % of victims' app transfers are on a call.
    * ``victim_remote_share`` 15 % of cases: the scammer had the victim install a fake app
      (fake VNeID, tax or power-company app) or AnyDesk "to help with the procedure"; detected
      in ``victim_remote_p`` 90 % of their transfers. Other victims: the legitimate rates.

    Account takeover: ``ato_remote_share`` 30 % of cases are done by remote control of the
    victim's own phone through such a fake app (the transfers come from the victim's usual
    device, home IP, Vietnam); the app detects the remote-access tool in ``ato_remote_p``
    85 % of their transfers (some malware hides as an accessibility service). The other
    takeovers run on the attacker's own device: legitimate rates (the attacker is seldom on a
    call).
    """

    on_call_personal: float = 0.03
    on_call_elderly: float = 0.06
    on_call_business: float = 0.08
    on_call_new_payee_factor: float = 3.0
    remote_habit_share: float = 0.01
    remote_habit_share_business: float = 0.03
    remote_habit_p: float = 0.3
    remote_other_p: float = 0.001
    victim_impersonation_share: float = 0.6
    victim_on_call_impersonation: float = 0.85
    victim_on_call_chat: float = 0.3
    victim_remote_share: float = 0.15
    victim_remote_p: float = 0.9
    ato_remote_share: float = 0.3
    ato_remote_p: float = 0.85

    def validate(self) -> AppSignalRates:
        """Return self, or raise ``ValueError`` naming the bad rate."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "on_call_new_payee_factor":
                if not 0.0 <= value <= 100.0:
                    raise ValueError(f"app.{f.name} must be between 0 and 100, got {value}")
            elif not 0.0 <= value <= 1.0:
                raise ValueError(f"app.{f.name} must be between 0 and 1, got {value}")
        return self


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulation: same config, same bytes.

    ``fraud_rate`` is the share of payment rows that are fraudulent (0 .. 1 %).
    ``start`` is the first local (Asia/Ho_Chi_Minh) day simulated.
    Labels are confirmed ``label_delay_median_days`` (log-normal, ``label_delay_sigma``) after
    the event; ``label_coverage`` is the share of fraud cases that are ever confirmed and
    ``legit_label_rate`` the share of legitimate suspicious-looking payments an investigator
    confirms as legit (false alarms).
    """

    accounts: int = 2000
    days: int = 30
    seed: int = 7
    fraud_rate: float = 0.004
    start: date = date(2026, 1, 1)
    bank_code: str = "CGB"
    label_delay_median_days: float = 7.0
    label_delay_sigma: float = 0.8
    label_coverage: float = 0.75
    legit_label_rate: float = 0.03
    mule_forward_minutes: tuple[float, float] = (1.0, 30.0)
    # share of the fraud budget per typology family (mule, takeover, shell, scam, reported
    # beneficiary, structuring)
    typology_mix: tuple[float, ...] = (0.32, 0.12, 0.25, 0.11, 0.12, 0.08)
    # share of reported accounts (mules, scam beneficiaries) SIMO lists, and the median days
    # from the first victim's payment to the listing
    watchlist_coverage: float = 0.7
    watchlist_delay_median_days: float = 5.0
    quiet_share: float = 0.35
    # the mobile app's device-risk signals (on_call, remote_access): see AppSignalRates
    app: AppSignalRates = field(default_factory=AppSignalRates)

    def validate(self) -> SimConfig:
        """Return self, or raise ``ValueError`` naming the bad option."""
        if not 50 <= self.accounts <= 5_000_000:
            raise ValueError(f"accounts must be between 50 and 5000000, got {self.accounts}")
        if not 1 <= self.days <= 3660:
            raise ValueError(f"days must be between 1 and 3660, got {self.days}")
        if not 0.0 <= self.fraud_rate <= MAX_FRAUD_RATE:
            raise ValueError(
                f"fraud_rate must be between 0 and {MAX_FRAUD_RATE}, got {self.fraud_rate}"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        lo, hi = self.mule_forward_minutes
        if not 0 < lo <= hi:
            raise ValueError(f"mule_forward_minutes must satisfy 0 < lo <= hi, got {lo}, {hi}")
        if self.label_delay_median_days <= 0 or self.label_delay_sigma < 0:
            raise ValueError("label delay median must be > 0 and sigma >= 0")
        for name in ("label_coverage", "legit_label_rate", "quiet_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if len(self.typology_mix) != 6 or min(self.typology_mix) < 0 or sum(
            self.typology_mix
        ) <= 0:
            raise ValueError("typology_mix needs six non-negative shares")
        if not 0.0 <= self.watchlist_coverage <= 1.0 or self.watchlist_delay_median_days <= 0:
            raise ValueError("watchlist_coverage must be between 0 and 1 and the delay > 0")
        if not self.bank_code.strip():
            raise ValueError("bank_code must not be empty")
        self.app.validate()
        return self
