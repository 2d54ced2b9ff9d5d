"""Replay an event log through the streaming engine: the training path uses exactly the code the
live scorer uses, so training and serving vectors are identical (the parity test proves it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from features.devices import DEFAULT_VISIBILITY_S, DeviceLinks
from features.engine import FeatureEngine
from features.events import Account, Label, Login, Payment, WatchEntry
from features.reference import ReferenceData
from features.vector import FEATURE_NAMES, FeatureVector


def reference_for(
    accounts: Iterable[Account],
    labels: Sequence[Label],
    payments: Sequence[Payment],
    watchlist: Iterable[WatchEntry] = (),
    logins: Iterable[Login] = (),
    device_visibility_s: float = DEFAULT_VISIBILITY_S,
) -> ReferenceData:
    """The reference data of a whole event log, as training replays it: every label resolved
    against the payment it names (a live scorer gets the same records from the published
    confirmed payments), every watch-list entry, and the device/IP sightings of every payment
    and login (a live scorer reads them from the ``device.links`` table). Answered as of each
    query's time."""
    wanted = {lb.event_id for lb in labels if lb.event_id is not None}
    named = {p.event_id: p for p in payments if p.event_id in wanted}
    ref = ReferenceData.of(accounts, labels, named, watchlist)
    ref.devices = DeviceLinks(device_visibility_s)
    ref.devices.load(payments)
    ref.devices.load(logins)
    return ref


def event_order_key(event: Payment | Login) -> tuple[float, int]:
    """Event-time order used by both paths: by timestamp, a login before a payment at the same
    instant (a session's login precedes its payment); ties otherwise keep arrival order (sort is
    stable)."""
    return (event.t, 0 if isinstance(event, Login) else 1)


def merge_in_order(payments: Sequence[Payment], logins: Sequence[Login]) -> list[Payment | Login]:
    events: list[Payment | Login] = [*logins, *payments]
    events.sort(key=event_order_key)
    return events


def replay(
    events: Iterable[Payment | Login],
    reference: ReferenceData | None = None,
    allowed_lateness_s: float = 300.0,
    engine: FeatureEngine | None = None,
) -> Iterator[tuple[Payment, FeatureVector]]:
    """Feed events (already in the order they would arrive) and yield each payment's vector."""
    if engine is None:
        engine = FeatureEngine(reference, allowed_lateness_s)
    on_payment = engine.on_payment
    on_login = engine.on_login
    for ev in events:
        if isinstance(ev, Payment):
            vector = on_payment(ev)
            if vector is not None:
                yield ev, vector
        else:
            on_login(ev)


def replay_matrix(
    payments: Sequence[Payment],
    logins: Sequence[Login],
    reference: ReferenceData | None = None,
    allowed_lateness_s: float = 300.0,
) -> tuple[np.ndarray, list[Payment]]:
    """Replay payments and logins in event-time order; return the feature matrix (rows in the
    order the payments were scored) and those payments. Duplicates are skipped. The sightings
    of these events are loaded into the reference's device table first (idempotent: loading
    them again changes nothing)."""
    if reference is None:
        reference = ReferenceData()
    reference.devices.load(payments)
    reference.devices.load(logins)
    events = merge_in_order(payments, logins)
    rows: list[tuple[float, ...]] = []
    scored: list[Payment] = []
    for payment, vector in replay(events, reference, allowed_lateness_s):
        rows.append(vector.values)
        scored.append(payment)
    if not rows:
        return np.empty((0, len(FEATURE_NAMES))), scored
    return np.asarray(rows, dtype=np.float64), scored
