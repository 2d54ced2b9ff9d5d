"""The mobile app's device-risk signals of each payment: ``on_call`` (a phone call active during
the transfer session) and ``remote_access`` (a remote-access / screen-sharing app running).

Coded per payment row as ``-1`` (not reported: the field is absent from the event), ``0`` or
``1``. Only mobile-app debits report them; the rates are :class:`~training.simulator.config.
AppSignalRates` (their docstring gives the reasoning). A fraud case may set its own
probabilities (:attr:`~training.simulator.typologies.base.Case.on_call_p`, ``remote_p``) for
its victims' transfers; every other row follows the legitimate rates of its account's segment.

Drawn from their own random streams, after everything else, so that adding the signals changes
no other column of a simulation: only the device of the takeovers done by remote control
(chosen in :mod:`~training.simulator.typologies.account_takeover` from the case stream of this
module) differs from a simulation without them.
"""

from __future__ import annotations

import numpy as np

from training.simulator import texts
from training.simulator.calendar import DAY_S, US
from training.simulator.config import AppSignalRates
from training.simulator.ledger import DEBIT, MOBILE, Columns
from training.simulator.population import BUSINESS_SEGMENTS, ELDERLY, Population
from training.simulator.typologies.base import Case

UNKNOWN, NO, YES = -1, 0, 1
# payments to a shop, a biller or an e-wallet: the payee is not a person one talks to, so a
# first payment there gets no extra chance of a call
NOT_A_PERSON = (texts.PURCHASE, texts.POS_TXT, texts.ATM_TXT, texts.TOPUP, texts.BILL)
NEW_PAYEE_S = 30 * DAY_S  # "first payment to a payee": none with it in the 30 days before


def app_rows(pay: Columns) -> np.ndarray:
    """Rows made in a mobile-app session: mobile debits with a session."""
    return (pay["chan"] == MOBILE) & (pay["dirn"] == DEBIT) & (pay["sess"] >= 0)


def first_with_payee(pay: Columns, t0_us: int, first_new_party: int) -> np.ndarray:
    """Per row: a first payment with this counterparty — none (either direction) in the 30
    days before, as the engine's ``first_payment_to_cp`` sees it. In the first 30 days of the
    period a counterparty unseen so far may have been paid before the period began: there only
    parties that came into being during the period (``>= first_new_party``: new payees,
    sellers, scam and cash-out accounts) count as new."""
    n = len(pay)
    order = np.lexsort((pay["row"], pay["ts"], pay["cp"], pay["acc"]))
    acc, cp, ts = pay["acc"][order], pay["cp"][order], pay["ts"][order]
    same = np.zeros(n, dtype=bool)
    same[1:] = (acc[1:] == acc[:-1]) & (cp[1:] == cp[:-1])
    recent = np.zeros(n, dtype=bool)
    recent[1:] = same[1:] & (ts[1:] - ts[:-1] <= NEW_PAYEE_S * US)
    out = np.empty(n, dtype=bool)
    out[order] = ~recent
    known_window = pay["ts"] >= t0_us + NEW_PAYEE_S * US
    return out & (known_window | (pay["cp"] >= first_new_party))


def legit_probabilities(pay: Columns, pop: Population, rates: AppSignalRates,
                        rng: np.random.Generator, t0_us: int, first_new_party: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the probability of a call and of a detected remote-access app under the
    legitimate rates (the account's segment, a first payment to the payee, the customer's
    remote-access habit)."""
    seg = pop.seg[pay["acc"]]
    business = np.isin(seg, BUSINESS_SEGMENTS)
    call = np.where(business, rates.on_call_business,
                    np.where(seg == ELDERLY, rates.on_call_elderly, rates.on_call_personal))
    new_person = first_with_payee(pay, t0_us, first_new_party) & ~np.isin(pay["desc"],
                                                                          NOT_A_PERSON)
    call = np.minimum(1.0, call * np.where(new_person, rates.on_call_new_payee_factor, 1.0))
    account_business = np.isin(pop.seg, BUSINESS_SEGMENTS)
    habit = rng.random(pop.n) < np.where(account_business, rates.remote_habit_share_business,
                                         rates.remote_habit_share)
    remote = np.where(habit[pay["acc"]], rates.remote_habit_p, rates.remote_other_p)
    return call, remote


def draw(pay: Columns, pop: Population, cases: list[Case], rates: AppSignalRates,
         rng: np.random.Generator, t0_us: int, first_new_party: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """The ``on_call`` and ``remote_access`` codes of every payment row (index = row id)."""
    call_p, remote_p = legit_probabilities(pay, pop, rates, rng, t0_us, first_new_party)
    for case in cases:
        if not case.victim_rows or (case.on_call_p is None and case.remote_p is None):
            continue
        rows = np.concatenate(case.victim_rows)
        if case.on_call_p is not None:
            call_p[rows] = case.on_call_p
        if case.remote_p is not None:
            remote_p[rows] = case.remote_p
    app = app_rows(pay)
    u_call = rng.random(len(pay))
    u_remote = rng.random(len(pay))
    on_call = np.where(app, (u_call < call_p).astype(np.int8), UNKNOWN).astype(np.int8)
    remote = np.where(app, (u_remote < remote_p).astype(np.int8), UNKNOWN).astype(np.int8)
    return on_call, remote
