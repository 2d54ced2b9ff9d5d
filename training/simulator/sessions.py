"""Where and how a customer acts: location (home, trip, business abroad), device, IP, and the
login that opens every mobile/internet session shortly before its first payment."""

from __future__ import annotations

import numpy as np

from training.simulator.calendar import DAY_S, US, Calendar
from training.simulator.ledger import ATM, BRANCH, INTERNET, MOBILE, POS, Ledger
from training.simulator.population import CTRY, Population

VN = CTRY["VN"]
FAILED_LOGIN_P = 0.03


def on_trip(pop: Population, cal: Calendar, acc: np.ndarray, ts: np.ndarray) -> np.ndarray:
    day = (ts - cal.t0_us) // (DAY_S * US)
    start = pop.trip_start[acc]
    return (start >= 0) & (day >= start) & (day < pop.trip_end[acc])


def session_fields(
    pop: Population, cal: Calendar, ledger: Ledger, rng: np.random.Generator,
    acc: np.ndarray, ts: np.ndarray, chan: np.ndarray,
) -> dict[str, np.ndarray]:
    """Session columns for legitimate debits by own accounts; emits their logins.

    Mobile/internet rows get a new session opened by a successful login 5 s – 5 min earlier on
    the same device, IP and country (sometimes preceded by a failed attempt). Devices are the
    customer's own; a few customers replace their phone during the period or use another device
    on a trip abroad (legitimate new devices, a hard case next to account takeover). Card and ATM
    rows carry the country where the card was used; branch rows the home country.
    """
    n = acc.size
    chan = np.broadcast_to(np.asarray(chan, dtype=np.int8), (n,))
    trip = on_trip(pop, cal, acc, ts)
    abroad = (~trip) & (rng.random(n) < pop.abroad_share[acc])
    ctry = np.where(trip, pop.trip_ctry[acc], np.where(abroad, pop.abroad_ctry[acc], VN))
    ip = np.where(trip, pop.trip_ip[acc], np.where(abroad, pop.abroad_ip[acc], pop.home_ip(acc)))
    day = (ts - cal.t0_us) // (DAY_S * US)
    dev = pop.home_device(acc, day)
    trip_dev = trip & (pop.trip_dev[acc] >= 0) & (rng.random(n) < 0.5)
    dev = np.where(trip_dev, pop.trip_dev[acc], dev)
    online = (chan == MOBILE) | (chan == INTERNET)
    card = (chan == POS) | (chan == ATM)
    sess = np.full(n, -1, dtype=np.int64)
    sess[online] = ledger.new_sessions(int(online.sum()))
    out_ctry = np.where(online | card, ctry, np.where(chan == BRANCH, VN, -1))
    out = {
        "sess": sess,
        "ip": np.where(online, ip, -1),
        "ctry": out_ctry,
        "dev": np.where(online, dev, -1),
    }
    emit_logins(ledger, rng, cal, acc[online], ts[online], ip[online], ctry[online],
                dev[online], chan[online], sess[online])
    return out


def emit_logins(
    ledger: Ledger, rng: np.random.Generator, cal: Calendar, acc: np.ndarray, ts: np.ndarray,
    ip: np.ndarray, ctry: np.ndarray, dev: np.ndarray, chan: np.ndarray, sess: np.ndarray,
    typ: int = 0, before_ms: tuple[int, int] = (5_000, 300_000),
    failed_p: float = FAILED_LOGIN_P,
) -> np.ndarray:
    """Successful logins shortly before ``ts`` (one per session); returns their timestamps."""
    lts = ts - rng.integers(before_ms[0], before_ms[1], size=ts.size) * 1000
    lts = np.maximum(lts, cal.t0_us)
    ledger.logins(ts=lts, acc=acc, ok=True, ip=ip, ctry=ctry, dev=dev, chan=chan, sess=sess,
                  typ=typ)
    failed = rng.random(ts.size) < failed_p
    if failed.any():
        fts = np.maximum(lts[failed] - rng.integers(10_000, 120_000, size=int(failed.sum())) * 1000,
                         cal.t0_us)
        ledger.logins(ts=fts, acc=acc[failed], ok=False, ip=ip[failed], ctry=ctry[failed],
                      dev=dev[failed], chan=chan[failed], sess=-1, typ=typ)
    return lts
