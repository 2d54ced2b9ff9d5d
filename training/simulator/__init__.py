"""Seeded bank simulator: a realistic population with labelled fraud typologies.

``simulate(SimConfig(accounts=2000, days=30, seed=7))`` returns a :class:`SimulationResult`
whose tables follow the event contracts of DESIGN.md; :mod:`training.datadir` writes them.

Typologies (each module's docstring describes its mechanism; every one has a quiet variant):

- ``mule_ring``: new (mostly student) accounts, fan-in from many victims in bursts, forwarded
  within ``mule_forward_minutes``; 45 % of loud rings run from Cambodia on shared devices.
- ``account_takeover``: foreign login on a new device, then large debits to first-time
  beneficiaries (usually mules) in the same session.
- ``shell_business``: recently registered business accounts, logins from abroad, many payers
  and many beneficiaries, 90–100 % pass-through within hours.
- ``scam_victim``: elderly or ordinary customers sending unusually large sums to new
  beneficiaries, investment scams repeated over days.

Fraud is ``fraud_rate`` of payment rows (0 .. 1 %); labels arrive days later for most cases.
"""

from training.simulator.config import SimConfig
from training.simulator.core import simulate
from training.simulator.result import SimulationResult
from training.simulator.typologies.base import TYPOLOGIES

__all__ = ["TYPOLOGIES", "SimConfig", "SimulationResult", "simulate"]
