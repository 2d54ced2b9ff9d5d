"""`canhgiac demo`: the whole loop on one machine.

Simulates a bank (history plus one live day), trains the first model and makes it champion,
starts the bundled Kafka-protocol broker (or uses ``CANHGIAC_KAFKA_BOOTSTRAP`` with
``--external-kafka``), the scorer and the investigator API, warms the scorer's state with the
last days of history, then streams the live day at a visible rate with a progress line, and
prints where to look, the top high-risk accounts with their reasons and this run's detection
figures. Ctrl-C stops every process it started. Re-running reuses the simulation and the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from canhgiac.cli import finite_float, port_number
from canhgiac.settings import Settings

T = TypeVar("T")

HELP = "run the whole service on one machine: broker, simulated bank, model, scorer, API"
LOCAL = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh
# The demo never touches a production deployment's state, whatever the shell exports: these
# settings are its own (Kafka's connection settings are kept only with --external-kafka).
TOPIC_PREFIX = "canhgiac-demo."
ISOLATED = ("DATA_DIR", "CASE_STORE_URL", "MLFLOW_TRACKING_URI", "MODEL_URI", "REGISTERED_MODEL",
            "TOPIC_PREFIX", "GROUP_ID", "REVIEW_THRESHOLD", "HOLD_THRESHOLD")
KAFKA_CONNECTION = ("KAFKA_BOOTSTRAP", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM",
                    "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
# training windows for the demo's history: warm-up, validation, label-delay gap, test (days)
WINDOWS = ["--warmup-days", "7", "--valid-days", "10", "--gap-days", "5", "--test-days", "10"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=int, default=2000, help="accounts simulated (>= 200)")
    parser.add_argument("--history-days", type=int, default=60,
                        help="days of history to train on (>= 40)")
    parser.add_argument("--warm-days", type=int, default=31,
                        help="last days of history streamed to the scorer before the live day")
    parser.add_argument("--rate", type=finite_float, default=None,
                        help="live payments per second (default: spread over --duration, or 40)")
    parser.add_argument("--duration", type=finite_float, default=None,
                        help="seconds of live streaming; then the demo ends by itself (exit 0)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--api-port", type=port_number, default=8000)
    parser.add_argument("--metrics-port", type=port_number, default=9108,
                        help="the scorer's Prometheus port (if taken, the scorer says so and "
                             "scores on without /metrics)")
    parser.add_argument("--external-kafka", action="store_true",
                        help="use CANHGIAC_KAFKA_BOOTSTRAP instead of the bundled broker "
                             f"(topics prefixed '{TOPIC_PREFIX}')")
    parser.add_argument("--reuse-topics", action="store_true",
                        help="with --external-kafka: go on even if the demo's topics hold data")
    parser.add_argument("--data-dir", type=Path, default=Path(".canhgiac"),
                        help="the demo's own state (simulation, MLflow, case store, logs); "
                             "CANHGIAC_DATA_DIR and the other production settings are ignored")


@dataclass
class Progress:
    """Counts read back from payments.scored and alerts by a background consumer."""

    scored: int = 0
    alerts: int = 0
    decisions: dict[str, str] = field(default_factory=dict)  # event_id -> decision
    scores: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    shown: tuple[float, int] | None = None  # (monotonic time, scored) of the last progress line


@dataclass
class Interrupt:
    """Ctrl-C or SIGTERM: stop every process once. The handler raises KeyboardInterrupt in the
    main thread, but it can land inside a library that swallows it (kafka-python's event loop
    catches BaseException in its tasks and logs it, when a blocking call of the main thread
    drives that loop), so the demo runs its blocking Kafka steps on a worker thread
    (:meth:`off_main`), its own waits also :meth:`check` the flag, and another Ctrl-C raises
    again; once the clean-up has begun, one more does not cut it short."""

    received: threading.Event = field(default_factory=threading.Event)
    cleaning: threading.Event = field(default_factory=threading.Event)

    def handle(self, *_: object) -> None:
        if self.cleaning.is_set():
            say("still stopping the processes; please wait")
            return
        self.received.set()
        raise KeyboardInterrupt

    def stopped_by(self, exc: Exception) -> int:
        """After a Ctrl-C, the failure of the step it cut short is the interruption (exit 0);
        otherwise ``exc`` is re-raised. A Ctrl-C swallowed inside kafka-python leaves the call
        it landed in to fail later in its own way: a producer's bootstrap times out 30 s on."""
        if not self.received.is_set():
            raise exc
        self.cleaning.set()
        say(f"stopping (the step under way when Ctrl-C came ended with {type(exc).__name__})")
        return 0

    def check(self) -> None:
        """Raise KeyboardInterrupt if a Ctrl-C came and was swallowed on its way."""
        if self.received.is_set() and not self.cleaning.is_set():
            raise KeyboardInterrupt

    def off_main(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking Kafka step (topic creation, a replay) on a worker thread while the
        main thread waits here: a Ctrl-C then lands in this wait, not inside kafka-python,
        which swallows it in its event loop and may carry on for minutes (CI saw the demo
        still warming up 90 s after a Ctrl-C). The worker is a daemon: after a Ctrl-C the
        demo stops its processes and exits without waiting for it."""
        done: dict[str, Any] = {}

        def work() -> None:
            try:
                done["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                done["error"] = exc

        worker = threading.Thread(target=work, name="canhgiac-demo-step", daemon=True)
        worker.start()
        while worker.is_alive():
            self.check()
            worker.join(0.2)
        self.check()
        if "error" in done:
            raise done["error"]
        return done["value"]


def _check(args: argparse.Namespace) -> None:
    from canhgiac.cli import UsageError  # noqa: PLC0415

    if args.accounts < 200:
        raise UsageError(f"--accounts must be >= 200, got {args.accounts}")
    if args.history_days < 40:
        raise UsageError(f"--history-days must be >= 40 (train/valid/gap/test windows), "
                         f"got {args.history_days}")
    if not 1 <= args.warm_days <= args.history_days:
        raise UsageError(f"--warm-days must be between 1 and --history-days, got {args.warm_days}")
    # `not 0 < x < inf`: nan compares false with everything, so `x <= 0` lets it through
    if args.rate is not None and not 0 < args.rate < math.inf:
        raise UsageError(f"--rate must be > 0 payments/s, got {args.rate}")
    if args.duration is not None and not 0 < args.duration < math.inf:
        raise UsageError(f"--duration must be > 0 seconds, got {args.duration}")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    _check(args)
    for name in ("training", "streaming", "canhgiac.cmd_replay", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the demo prints its own progress
    # kafka-python logs its connection retries and metadata refreshes as warnings: in the
    # demo's terminal they hide the story (the children's logs keep them)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    settings = demo_settings(settings, args)
    data_dir = settings.data_dir
    if args.external_kafka and not args.reuse_topics:
        refuse_used_topics(settings)
    work = data_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    broker = None
    stop = threading.Event()
    interrupt = Interrupt()
    signal.signal(signal.SIGTERM, interrupt.handle)
    signal.signal(signal.SIGINT, interrupt.handle)
    try:
        sim_dir, hist_dir, live_start = prepare_data(args, work)
        train_model(settings, hist_dir, work)
        if args.external_kafka:
            bootstrap = settings.kafka_bootstrap
            say(f"using Kafka at {bootstrap}")
        else:
            from streaming.broker import Broker  # noqa: PLC0415

            broker = Broker(log_path=work / "broker.log").start()
            bootstrap = broker.bootstrap
            say(f"bundled Kafka-protocol broker (Tansu) on {bootstrap}")
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        env = child_env(settings, bundled=broker is not None)
        from serving.store import CaseStore  # noqa: PLC0415

        CaseStore(settings.store_url).close()  # create the schema before two processes race
        from streaming.topics import ALL_TOPICS, ensure_topics_with  # noqa: PLC0415

        # the scorer starts on existing topics (else it logs errors and retries until the replay
        # below creates them)
        interrupt.off_main(ensure_topics_with, settings.kafka_client_config(),
                           [settings.topic(t) for t in ALL_TOPICS],
                           partitions=settings.topic_partitions,
                           replication=settings.topic_replication, prefix=settings.topic_prefix)
        procs.append(start(["score"], {**env, "CANHGIAC_METRICS_PORT": str(args.metrics_port)},
                           work / "scorer.log"))
        say(f"scorer started (log {work / 'scorer.log'})")
        procs.append(start(["serve", "--port", str(args.api_port)], env, work / "api.log"))
        api = f"http://{settings.api_host}:{args.api_port}"
        wait_http(f"{api}/healthz", 60, procs)
        say(f"investigator API on {api} (log {work / 'api.log'})")
        key = create_key(env)
        interrupt.check()
        return stream(args, settings, sim_dir, live_start, api, key, procs, stop, interrupt)
    except KeyboardInterrupt:
        interrupt.cleaning.set()
        say("stopping")
        return 0
    except Exception as exc:
        return interrupt.stopped_by(exc)
    finally:
        interrupt.cleaning.set()
        stop.set()
        for proc in reversed(procs):
            stop_process(proc)
        if broker is not None:
            broker.stop()
        if procs or broker is not None:
            say("every process stopped")


# --------------------------------------------------------------------------- steps


def prepare_data(args: argparse.Namespace, work: Path) -> tuple[Path, Path, datetime]:
    """Simulate history + one live day once; write the history-only copy used for training."""
    from training.datadir import write_dir  # noqa: PLC0415
    from training.simulator import SimConfig, simulate  # noqa: PLC0415

    start_day = date(2026, 1, 1)
    days = args.history_days + 1
    sim_dir = work / f"sim-{args.accounts}a-{days}d-s{args.seed}"
    hist_dir = sim_dir / "history"
    live_start = datetime.combine(start_day + timedelta(days=args.history_days),
                                  datetime.min.time(), LOCAL)
    if (hist_dir / "payments.parquet").exists():
        say(f"reusing the simulated bank in {sim_dir}")
        return sim_dir, hist_dir, live_start
    say(f"simulating {args.accounts} accounts over {days} days (seed {args.seed})")
    result = simulate(SimConfig(accounts=args.accounts, days=days, seed=args.seed,
                                start=start_day))
    write_dir(result, sim_dir)
    cut_history(sim_dir, hist_dir, live_start)
    summary = result.summary()
    say(f"{summary['payments']:,} payments, {summary['logins']:,} logins, "
        f"{summary['fraud_payments']:,} fraudulent ({summary['fraud_rate'] * 100:.2f} %)")
    return sim_dir, hist_dir, live_start


def cut_history(sim_dir: Path, hist_dir: Path, cut: datetime) -> None:
    """Copy the data directory keeping only what a bank knew before ``cut``."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    hist_dir.mkdir(parents=True, exist_ok=True)
    bound = pa.scalar(cut.astimezone(timezone.utc), type=pa.timestamp("us", tz="UTC"))  # noqa: UP017
    payments = pq.read_table(sim_dir / "payments.parquet")
    payments = payments.filter(pc.less(payments["ts"], bound))
    pq.write_table(payments, hist_dir / "payments.parquet")
    logins = pq.read_table(sim_dir / "logins.parquet")
    pq.write_table(logins.filter(pc.less(logins["ts"], bound)), hist_dir / "logins.parquet")
    labels = pq.read_table(sim_dir / "labels.parquet")
    pq.write_table(labels.filter(pc.less(labels["confirmed_at"], bound)),
                   hist_dir / "labels.parquet")
    pq.write_table(pq.read_table(sim_dir / "accounts.parquet"), hist_dir / "accounts.parquet")
    truth = pq.read_table(sim_dir / "truth.parquet")
    pq.write_table(truth.filter(pc.is_in(truth["event_id"], payments["event_id"])),
                   hist_dir / "truth.parquet")
    pq.write_table(pq.read_table(sim_dir / "accounts_truth.parquet"),
                   hist_dir / "accounts_truth.parquet")


def train_model(settings: Settings, hist_dir: Path, work: Path) -> None:
    marker = work / "trained.json"
    if marker.exists() and json.loads(marker.read_text()).get("data") == str(hist_dir):
        say("reusing the trained champion model (delete .canhgiac/demo/trained.json to retrain)")
        return
    say("training the first model (replay → LightGBM → evaluation → MLflow → champion)")
    env = {**child_env(settings, bundled=False), "PYTHONWARNINGS": "ignore::UserWarning"}
    code = subprocess.call(  # noqa: S603 - our own command
        [sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING", "train",
         "--data", str(hist_dir), "--promote", *WINDOWS], env=env,
    )
    if code != 0:
        raise SystemExit(f"[demo] training failed (exit {code})")
    marker.write_text(json.dumps({"data": str(hist_dir)}))


def demo_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The demo's own settings: its data directory, case store, MLflow registry, topics and
    consumer group, and the model's thresholds, whatever CANHGIAC_* says."""
    defaults = Settings.model_fields
    update: dict[str, Any] = {
        "data_dir": args.data_dir.resolve(), "case_store_url": "", "mlflow_tracking_uri": "",
        "model_uri": defaults["model_uri"].default,
        "registered_model": defaults["registered_model"].default,
        "topic_prefix": TOPIC_PREFIX, "group_id": "canhgiac-demo-scorer",
        "review_threshold": None, "hold_threshold": None,
    }
    if not args.external_kafka:
        update.update(kafka_security_protocol="PLAINTEXT", kafka_sasl_mechanism=None,
                      kafka_sasl_username=None, kafka_sasl_password=None)
    return settings.model_copy(update=update)


def refuse_used_topics(settings: Settings) -> None:
    """With an external Kafka, refuse topics of the demo's prefix that already hold data."""
    from kafka import KafkaConsumer, TopicPartition  # noqa: PLC0415

    from canhgiac.cli import UsageError  # noqa: PLC0415
    from streaming.topics import ALL_TOPICS  # noqa: PLC0415

    consumer = KafkaConsumer(**settings.kafka_client_config(), enable_auto_commit=False)
    try:
        existing = consumer.topics()
        used = []
        for name in (settings.topic(t) for t in ALL_TOPICS):
            if name not in existing:
                continue
            parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
            if any(consumer.end_offsets(parts).values()):
                used.append(name)
    finally:
        consumer.close()
    if used:
        raise UsageError(f"the demo's topics already hold data on {settings.kafka_bootstrap}: "
                         f"{', '.join(used)}; pass --reuse-topics to use them anyway")


def child_env(settings: Settings, bundled: bool) -> dict[str, str]:
    keep_kafka = () if bundled else KAFKA_CONNECTION
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("CANHGIAC_") and k.removeprefix("CANHGIAC_") in
                   (*ISOLATED, *KAFKA_CONNECTION) and k.removeprefix("CANHGIAC_")
                   not in keep_kafka)}
    env.update({"CANHGIAC_DATA_DIR": str(settings.data_dir),
                "CANHGIAC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
                "CANHGIAC_TOPIC_PREFIX": settings.topic_prefix,
                "CANHGIAC_GROUP_ID": settings.group_id,
                "PYTHONUNBUFFERED": "1"})
    if bundled:
        # Tansu waits the group's rebalance timeout before the first assignment.
        env.setdefault("CANHGIAC_MAX_POLL_INTERVAL_MS", "3000")
        env.setdefault("CANHGIAC_SESSION_TIMEOUT_MS", "3000")
        # fresh topics on a fresh broker: score everything produced to them; and fetch waits
        # short enough for the bundled broker, which answers a long poll up to half its wait
        # after a record arrives (Apache Kafka answers at once: there the defaults cost nothing)
        env.setdefault("CANHGIAC_START_FROM", "earliest")
        env.setdefault("CANHGIAC_FETCH_MAX_WAIT_MS", "100")
        env.setdefault("CANHGIAC_SINK_FETCH_MAX_WAIT_MS", "100")
    return env


CHILDREN: dict[int, tuple[str, Path]] = {}  # pid -> (name, log) of the processes we started


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "canhgiac.cli", "--log-level", "INFO", *command],
        env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    CHILDREN[proc.pid] = ({"score": "scorer", "serve": "API"}.get(command[0], command[0]),
                          log_path)
    return proc


def exit_cause(proc: subprocess.Popen[bytes]) -> str:
    """One line: which child exited, its code, and the last error line of its log."""
    name, log_path = CHILDREN.get(proc.pid, ("a process", Path("?")))
    cause = ""
    try:
        lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines()
                 if ln.strip()]
        errors = [ln for ln in lines if " ERROR " in ln or " CRITICAL " in ln
                  or ln.startswith(("canhgiac", "Traceback")) or "Error" in ln]
        cause = (errors or lines or [""])[-1][:240]
    except OSError:
        pass
    return (f"[demo] the {name} exited (code {proc.returncode})"
            + (f": {cause}" if cause else "") + f" — full log {log_path}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_http(url: str, timeout_s: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(exit_cause(proc))
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"[demo] {url} did not answer within {timeout_s:.0f}s")


def create_key(env: dict[str, str]) -> str:
    name = f"demo-investigator-{int(time.time())}"
    out = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING", "keys", "create",
         "--role", "investigator", "--name", name],
        env=env, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def api_get(url: str, key: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


# --------------------------------------------------------------------------- streaming


def follow_outputs(settings: Settings, progress: Progress, stop: threading.Event) -> None:
    """Count scored payments and alerts as they come back (every partition, from the start)."""
    from kafka import KafkaConsumer, TopicPartition  # noqa: PLC0415

    consumer = KafkaConsumer(**settings.kafka_client_config(), enable_auto_commit=False,
                             fetch_max_wait_ms=50)
    topics = [settings.topic("payments.scored"), settings.topic("alerts")]
    parts: list[TopicPartition] = []
    while not stop.is_set():
        known = {t: consumer.partitions_for_topic(t) for t in topics}
        if all(known.values()):  # both topics, not just partitions of one of them
            parts = [TopicPartition(t, p) for t in topics for p in known[t] or ()]
            break
        consumer.topics()  # refresh metadata
        time.sleep(0.5)
    if not parts:  # stopped (Ctrl-C) before the output topics were found
        consumer.close()
        return
    consumer.assign(parts)
    consumer.seek_to_beginning()
    scored_topic = topics[0]
    while not stop.is_set():
        for tp, records in consumer.poll(timeout_ms=200).items():
            with progress.lock:
                for r in records:
                    if tp.topic == scored_topic:
                        doc = json.loads(r.value)
                        if doc["event_id"] not in progress.decisions:
                            progress.scored += 1
                        progress.decisions[doc["event_id"]] = doc["decision"]
                        progress.scores[doc["event_id"]] = doc["score"]
                    else:
                        progress.alerts += 1
    consumer.close()


def stream(args: argparse.Namespace, settings: Settings, sim_dir: Path, live_start: datetime,
           api: str, key: str, procs: list[subprocess.Popen[bytes]],
           stop: threading.Event, interrupt: Interrupt) -> int:
    from canhgiac.cmd_replay import produce  # noqa: PLC0415
    from training.datadir import read_dir  # noqa: PLC0415

    data = read_dir(sim_dir)
    warm_start = live_start - timedelta(days=args.warm_days)
    live_payments = [p for p in data.payments if p.ts >= live_start]
    warm_payments = sum(1 for p in data.payments if warm_start <= p.ts < live_start)
    progress = Progress()
    threading.Thread(target=follow_outputs, args=(settings, progress, stop), daemon=True).start()

    say(f"warming the scorer with the last {args.warm_days} days of history "
        f"({warm_payments:,} payments) as fast as it goes")
    # every label confirmed before the warm-up (counterparty risk), then the warm-up days
    labels_only = dataclasses.replace(data, payments=[], logins=[], accounts=[])
    interrupt.off_main(produce, labels_only, settings, rate=None, end=warm_start)
    interrupt.off_main(produce, data, settings, rate=None, start=warm_start, end=live_start)
    show_progress(progress, warm_payments, procs, stop, interrupt, label="warm-up")

    rate = args.rate or (len(live_payments) / args.duration if args.duration else 40.0)
    say(f"streaming the live day: {len(live_payments):,} payments at {rate:.0f}/s")
    sent_before = progress.scored
    live_data = dataclasses.replace(data, accounts=[])  # the warm-up already sent them
    producer = threading.Thread(target=produce, args=(live_data, settings, rate, live_start, None),
                                daemon=True)
    producer.start()
    deadline = time.monotonic() + (args.duration or len(live_payments) / rate) + 60
    while producer.is_alive() or progress.scored < sent_before + len(live_payments):
        interrupt.check()
        show_line(progress, sent_before + len(live_payments), procs, "live")
        if time.monotonic() > deadline:
            say("the scorer did not score every live payment in time; see .canhgiac/demo/")
            break
        time.sleep(1.0)
    print(flush=True)

    report(args, settings, data, live_payments, progress, api, key)
    if args.duration is not None:
        return 0
    say("the service keeps running; press Ctrl-C to stop every process")
    while all(p.poll() is None for p in procs):
        interrupt.check()
        time.sleep(1.0)
    for proc in procs:
        if proc.poll() is not None:
            print(exit_cause(proc), flush=True)
    say("stopping")
    return 1


def show_line(progress: Progress, target: int, procs: list[subprocess.Popen[bytes]],
              label: str) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise SystemExit(exit_cause(proc))
    with progress.lock:
        scored, alerts = progress.scored, progress.alerts
    now = time.monotonic()
    last_t, last_scored = progress.shown or (now, scored)
    rate = (scored - last_scored) / max(now - last_t, 1e-6)
    progress.shown = (now, scored)
    print(f"\r[demo] {label}: scored {scored:,}/{target:,}  {rate:6.0f} events/s  "
          f"alerts {alerts:,}  waiting to be scored {max(target - scored, 0):,}   ",
          end="", flush=True)


def show_progress(progress: Progress, target: int, procs: list[subprocess.Popen[bytes]],
                  stop: threading.Event, interrupt: Interrupt, label: str) -> None:
    deadline = time.monotonic() + 600
    while progress.scored < target and time.monotonic() < deadline and not stop.is_set():
        interrupt.check()
        show_line(progress, target, procs, label)
        time.sleep(1.0)
    show_line(progress, target, procs, label)
    print(flush=True)


def report(args: argparse.Namespace, settings: Settings, data: Any, live: list[Any],
           progress: Progress, api: str, key: str) -> None:
    truth = data.truth
    fraud_ids = set(truth.loc[truth["is_fraud"], "event_id"]) if truth is not None else set()
    live_ids = {p.event_id for p in live}
    with progress.lock:
        decisions = {e: d for e, d in progress.decisions.items() if e in live_ids}
    alerted = {e for e, d in decisions.items() if d in ("review", "hold")}
    held = {e for e, d in decisions.items() if d == "hold"}
    live_fraud = fraud_ids & live_ids
    money = {p.event_id: p.amount for p in live}
    fraud_money = sum(money[e] for e in live_fraud)
    stopped = sum(money[e] for e in live_fraud & held)  # only held payments stop money
    rows = api_get(f"{api}/v1/accounts/high-risk?limit=10", key)
    items = rows.get("items", rows) if isinstance(rows, dict) else rows
    roles = {}
    if data.accounts_truth is not None:
        roles = dict(zip(data.accounts_truth["account_id"], data.accounts_truth["role"],
                         strict=True))
    print()
    print("Top high-risk accounts (GET /v1/accounts/high-risk?limit=10):")
    print(f"  {'account':<16}{'type':<10}{'score':>6}  {'true role':<16}reasons")
    for item in items[:10]:
        reasons = item.get("reasons") or item.get("top_reasons") or []
        text = "; ".join(r.get("text", str(r)) if isinstance(r, dict) else str(r)
                         for r in reasons[:2])
        print(f"  {item.get('account_id', '?'):<16}{item.get('type') or '?':<10}"
              f"{item.get('score', 0):>6.3f}  {roles.get(item.get('account_id'), '?'):<16}"
              f"{text[:90]}")
    print()
    print("Detection on the live day (simulator ground truth):")
    print(f"  payments scored            {len(decisions):,} of {len(live):,}")
    print(f"  alerts (review + hold)     {len(alerted):,} ({len(held):,} held)")
    print(f"  fraudulent payments        {len(live_fraud):,}")
    if live_fraud:
        caught = len(live_fraud & alerted)
        print(f"  fraud caught (recall)      {caught:,} ({caught / len(live_fraud):.0%})")
        print(f"  money stopped (held)       {stopped:,.0f} of {fraud_money:,.0f} VND "
              f"({stopped / fraud_money:.0%})")
    if alerted:
        print(f"  alert precision            {len(live_fraud & alerted) / len(alerted):.0%}")
    print()
    story(api, items, roles, key)
    print("Where to look:")
    print(f"  investigator page    {api}/ui/ (sign in with the key below)")
    print(f"  API docs (OpenAPI)   {api}/docs")
    print(f"  investigator key     {key}")
    print(f"  item 9a view         {api}/ui/?type=business&foreign_login=true")
    print(f"  work queues          {api}/ui/queues/unassigned")
    print(f"  try                  curl -H 'Authorization: Bearer {key}' "
          f"'{api}/v1/accounts/high-risk?limit=5'")
    print(f"  MLflow UI            .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}")
    print(f"  logs                 {settings.data_dir / 'demo'}/{{scorer,api,broker}}.log")
    sys.stdout.flush()


def story(api: str, items: list[Any], roles: dict[str, str], key: str) -> None:
    """Where the live day's story is: the top mule ring's account and its network view."""
    ring = ([i for i in items if i.get("typology") == "mule"]
            or [i for i in items if roles.get(i.get("account_id")) in ("mule", "shell")])
    top = (ring or items or [None])[0]
    if top is None:
        print("The story of the day: no account is ranked yet (is something writing the case "
              f"store?); the page: {api}/ui/")
        print()
        return
    account = urllib.parse.quote(str(top["account_id"]), safe="")
    kind = "the top mule ring's account" if ring else "the riskiest account"
    print(f"The story of the day: {kind} {top['account_id']} "
          f"(score {top.get('score', 0):.3f}, {top.get('typology', '?')}).")
    print(f"  its page             {api}/ui/accounts/{account}")
    print(f"  its money network    {api}/ui/accounts/{account}/network")
    print("  open a case there, request a freeze, and approve it with a supervisor's key "
          "(canhgiac keys create --role supervisor --name NAME)")
    print()
