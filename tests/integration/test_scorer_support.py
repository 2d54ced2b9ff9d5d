"""Support for the scorer's integration tests and benchmark: small synthetic bank data, a real
(tiny) LightGBM RiskModel trained on it, producing to / reading from the real broker, and
running ``canhgiac score`` as a subprocess. Holds no tests itself.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from features.events import Account, Label, Login, Payment, encode
from features.reference import ReferenceData
from features.replay import event_order_key, merge_in_order, replay_matrix
from streaming.topics import ALL_TOPICS, ensure_topics

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 5, tzinfo=UTC)
PARTITIONS = 4


@dataclass
class BankData:
    accounts: list[Account]
    payments: list[Payment]
    logins: list[Login]
    labels: list[Label]
    truth: dict[str, int]  # event_id -> 1 if fraud

    def reference(self) -> ReferenceData:
        return ReferenceData.of(self.accounts, self.labels)

    def events(self) -> list[Payment | Login]:
        return merge_in_order(self.payments, self.logins)


def make_bank(n_accounts: int = 300, n_payments: int = 3000, seed: int = 1,
              span_s: float = 3 * 86400.0, prefix: str = "A") -> BankData:
    """Accounts making payments, a login before most sessions; some logins from abroad on a
    new device followed by a large transfer to a new beneficiary (the fraud of this toy bank)."""
    rng = random.Random(seed)
    ids = [f"{prefix}{i:05d}" for i in range(n_accounts)]
    accounts = [
        Account(account_id=a, customer_id=f"C{a}", type="business" if i % 10 == 0 else "personal",
                opened_at=START - timedelta(days=rng.randint(5, 2000)), kyc_country="VN",
                birth_year=rng.randint(1950, 2005))
        for i, a in enumerate(ids)
    ]
    payments: list[Payment] = []
    logins: list[Login] = []
    truth: dict[str, int] = {}
    labels: list[Label] = []
    times = sorted(rng.uniform(0, span_s) for _ in range(n_payments))
    for i, t in enumerate(times):
        acct = ids[int(rng.paretovariate(1.2) * 7) % n_accounts]
        fraud = rng.random() < 0.04
        ts = START + timedelta(seconds=round(t, 3))
        country = "VN"
        device = f"d-{acct}"
        # each account its own IP and device: no links between accounts, so the shared-device
        # columns are 0 however far the live device table lags behind a bulk replay
        # (tests/integration/test_devices.py checks those columns in real time)
        n = int(acct[len(prefix):])
        ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        if fraud or rng.random() < 0.5:
            country = "KH" if fraud or rng.random() < 0.03 else "VN"
            device = f"d-new-{i}" if fraud else device
            logins.append(Login(event_id=f"L{prefix}{i:07d}", ts=ts - timedelta(seconds=30),
                                account_id=acct, success=True, ip=ip,
                                country=country, device_id=device, channel="mobile"))
        amount = float(rng.choice([50_000, 120_000, 500_000, 2_000_000]))
        if fraud:
            amount = float(rng.choice([40_000_000, 95_000_000, 150_000_000]))
        eid = f"P{prefix}{i:07d}"
        payments.append(Payment(
            event_id=eid, ts=ts, account_id=acct, direction="debit" if rng.random() < 0.7
            else "credit", amount=amount, currency="VND",
            counterparty_account=f"CP{rng.randint(0, 50 if not fraud else 10_000)}",
            counterparty_bank="VCB", channel="mobile", session_id=f"s{i}", ip=ip,
            country=country, device_id=device,
            # the app's signals: absent on every fourth payment, else a fixed pattern (no
            # random draw, so the rest of the bank is what it was without them)
            on_call=None if i % 4 == 0 else i % 9 == 0,
            remote_access=None if i % 4 == 0 else i % 13 == 0,
        ))
        truth[eid] = int(fraud)
        if fraud and rng.random() < 0.5:
            labels.append(Label(label_id=f"LB{prefix}{i}", confirmed_at=ts + timedelta(hours=2),
                                account_id=payments[-1].counterparty_account, label="mule",
                                event_id=eid, source="police"))
    return BankData(accounts, payments, logins, labels, truth)


def train_model(data: BankData, seed: int = 7, rounds: int = 40):  # -> RiskModel
    from models.risk import ModelConfig, RiskModel

    x, scored = replay_matrix(data.payments, data.logins, data.reference())
    y = np.array([data.truth[p.event_id] for p in scored], dtype=np.float64)
    cut = int(len(y) * 0.7)
    cfg = ModelConfig(seed=seed, num_boost_round=rounds, early_stopping_rounds=rounds,
                      anomaly="never", min_data_in_leaf=10, num_threads=1,
                      review_budget=0.05, hold_budget=0.01)
    return RiskModel.fit(x[:cut], y[:cut], x[cut:], y[cut:], cfg)


def expected_scores(data: BankData, model) -> dict[str, float]:
    """What an uninterrupted single scorer must produce: the offline replay + the model."""
    x, scored = replay_matrix(data.payments, data.logins, data.reference())
    scores = model.score(x)
    return {p.event_id: float(s) for p, s in zip(scored, scores, strict=True)}


# ---------------------------------------------------------------- Kafka helpers
def create_topics(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> None:
    ensure_topics(bootstrap, [prefix + t for t in ALL_TOPICS], partitions=partitions,
                  prefix=prefix)


def produce_reference(bootstrap: str, prefix: str, data: BankData) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for a in data.accounts:
        producer.send(prefix + "accounts", key=a.account_id.encode(), value=encode(a))
    for lbl in data.labels:
        producer.send(prefix + "labels", key=lbl.account_id.encode(), value=encode(lbl))
    producer.flush()
    producer.close()


def produce_events(bootstrap: str, prefix: str, events: list[Payment | Login],
                   producer: KafkaProducer | None = None) -> None:
    """Produce in event-time order across both topics (what a bank's platform does).

    Sent in that order is not *in the log* in that order: the producer batches each partition
    on its own, and one request's batches of the two topics are appended one after the other,
    so a login can be readable before a payment sent ahead of it. A scorer that is reading
    while they arrive may then apply the login first (``streaming.align``'s stated limit); with
    the simulator's events hours apart, the payment is then later than the allowed lateness
    and scored ``late``. For events produced while a scorer runs, use :func:`produce_paced`
    (each send acknowledged before the next). Events produced before it starts need no such
    care (they are all in the log when it reads them)."""
    own = producer is None
    producer = producer or KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for ev in sorted(events, key=event_order_key):
        topic = prefix + ("payments" if isinstance(ev, Payment) else "logins")
        producer.send(topic, key=ev.account_id.encode(), value=encode(ev))
    producer.flush()
    if own:
        producer.close()


class OutputReader:
    """Reads an output topic from the beginning; keeps every record (and the last per id)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                      enable_auto_commit=False, fetch_max_wait_ms=20)
        parts = None
        deadline = time.monotonic() + 10
        while not parts and time.monotonic() < deadline:
            parts = self.consumer.partitions_for_topic(topic)
            if not parts:
                time.sleep(0.1)
        assert parts, f"topic {topic} missing"
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.records: list[dict] = []
        self.raw: list = []
        self.last: dict[str, dict] = {}

    def read(self, timeout_ms: int = 200) -> None:
        for recs in self.consumer.poll(timeout_ms=timeout_ms, max_records=10_000).values():
            for r in recs:
                self.raw.append(r)
                try:
                    doc = orjson.loads(r.value)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(doc, dict) and "event_id" in doc:
                    self.records.append(doc)
                    self.last[doc["event_id"]] = doc

    def wait_for(self, n_ids: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.last) < n_ids and time.monotonic() < deadline:
            self.read()

    def wait_raw(self, n: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.raw) < n and time.monotonic() < deadline:
            self.read()

    def close(self) -> None:
        self.consumer.close(autocommit=False)


# ---------------------------------------------------------------- the scorer as a process
def scorer_env(bootstrap: str, prefix: str, data_dir: Path, **extra: object) -> dict[str, str]:
    env = {
        **os.environ,
        "CANHGIAC_KAFKA_BOOTSTRAP": bootstrap,
        "CANHGIAC_TOPIC_PREFIX": prefix,
        "CANHGIAC_GROUP_ID": f"{prefix}scorer",
        "CANHGIAC_DATA_DIR": str(data_dir),
        "CANHGIAC_MAX_POLL_INTERVAL_MS": "3000",
        "CANHGIAC_SESSION_TIMEOUT_MS": "3000",
        "CANHGIAC_METRICS_PORT": "0",
        "CANHGIAC_CHECKPOINT_INTERVAL_S": "0.5",
        "CANHGIAC_MODEL_POLL_INTERVAL_S": "0.5",
        "CANHGIAC_BATCH_SIZE": "200",
        "CANHGIAC_START_FROM": "earliest",
        "CANHGIAC_FETCH_MAX_WAIT_MS": "100",
    }
    env.update({f"CANHGIAC_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def start_scorer(env: dict[str, str], model_dir: Path, log_path: Path) -> subprocess.Popen:
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "canhgiac.cli", "score", "--model", str(model_dir), "--no-sink"],
        env=env, cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )


def stop_scorer(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise


# ---------------------------------------------------------------- shared, built once per process
_CACHE: dict[str, object] = {}


def shared_bank() -> BankData:
    if "bank" not in _CACHE:
        _CACHE["bank"] = make_bank()
    return _CACHE["bank"]  # type: ignore[return-value]


def shared_models(tmp_root: Path):  # -> tuple[(RiskModel, Path), (RiskModel, Path)]
    """Two real models (different seeds/rounds, so different versions and scores), saved."""
    if "models" not in _CACHE:
        data = shared_bank()
        out = []
        for i, (seed, rounds) in enumerate(((7, 40), (11, 25))):
            model = train_model(data, seed=seed, rounds=rounds)
            model.version = f"v{i + 1}-{model.version}"
            out.append((model, model.save(tmp_root / f"model-{i + 1}")))
        _CACHE["models"] = tuple(out)
    return _CACHE["models"]


def produce_paced(bootstrap: str, prefix: str, events: list[Payment | Login],
                  per_s: float = 0.0) -> None:
    """One event at a time, each acknowledged before the next (event-time order preserved
    across the two topics at the broker), optionally paced to ``per_s`` events per second."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    t0 = time.monotonic()
    for i, ev in enumerate(sorted(events, key=event_order_key)):
        topic = prefix + ("payments" if isinstance(ev, Payment) else "logins")
        producer.send(topic, key=ev.account_id.encode(), value=encode(ev)).get(timeout=30)
        if per_s:
            delay = t0 + (i + 1) / per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    producer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = c.partitions_for_topic(topic) or set()
        return {p: c.committed(TopicPartition(topic, p)) for p in sorted(parts)}
    finally:
        c.close(autocommit=False)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The high-water mark of every partition, as seen by reading the topic to its end."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=20)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 1.0:
            if c.poll(timeout_ms=100):
                quiet_since = time.monotonic()
        return {tp.partition: c.highwater(tp) for tp in tps}
    finally:
        c.close(autocommit=False)
