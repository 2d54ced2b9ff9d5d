"""The data directory: round trips in both formats and a precise error for each violation."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.events import Account, Label, Login, Payment
from training.datadir import DataDirError, from_tables, ordered_events, read_dir, write_dir
from training.simulator import SimConfig, simulate


@pytest.fixture(scope="module")
def result():
    return simulate(SimConfig(accounts=120, days=4, seed=9, fraud_rate=0.01))


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    return write_dir(result, tmp_path_factory.mktemp("data") / "parquet")


@pytest.fixture
def copy(written, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(written, target)
    return target


def _replace(path, name, table):
    pq.write_table(table, path / f"{name}.parquet")


def test_parquet_round_trip_gives_typed_events(result, written):
    data = read_dir(written)
    assert len(data.payments) == result.payments.num_rows
    assert all(isinstance(p, Payment) for p in data.payments)
    assert all(isinstance(x, Login) for x in data.logins)
    assert all(isinstance(a, Account) for a in data.accounts)
    assert all(isinstance(lb, Label) for lb in data.labels)
    assert data.payments[0].ts.utcoffset().total_seconds() == 0
    assert data.payments[0].t == data.payments[0].ts.timestamp()
    assert list(data.truth.columns) == ["event_id", "is_fraud", "typology"]
    assert list(data.accounts_truth.columns) == ["account_id", "role"]
    memory = from_tables(result)
    assert data.payments == memory.payments and data.labels == memory.labels


def test_jsonl_round_trip_equals_parquet(result, written, tmp_path):
    path = write_dir(result, tmp_path / "jsonl", fmt="jsonl")
    assert sorted(p.name for p in path.iterdir())[0] == "accounts.jsonl"
    a, b = read_dir(written), read_dir(path)
    assert a.payments == b.payments and a.logins == b.logins
    assert a.accounts == b.accounts and a.labels == b.labels
    assert b.truth["is_fraud"].sum() == a.truth["is_fraud"].sum()


def test_truth_files_are_optional(copy):
    (copy / "truth.parquet").unlink()
    (copy / "accounts_truth.parquet").unlink()
    data = read_dir(copy)
    assert data.truth is None and data.accounts_truth is None
    assert data.payments


def test_missing_file_is_named(copy):
    (copy / "labels.parquet").unlink()
    with pytest.raises(DataDirError, match=r"labels\.parquet: missing file"):
        read_dir(copy)


def test_missing_column_is_named(copy):
    table = pq.read_table(copy / "payments.parquet").drop_columns(["counterparty_bank"])
    _replace(copy, "payments", table)
    with pytest.raises(DataDirError, match=r"payments\.parquet: column 'counterparty_bank'"):
        read_dir(copy)


def test_invalid_row_names_file_column_and_row(copy):
    table = pq.read_table(copy / "payments.parquet")
    amount = table["amount"].to_pylist()
    amount[5] = -10.0
    table = table.set_column(table.schema.get_field_index("amount"), "amount",
                             pa.array(amount, pa.float64()))
    _replace(copy, "payments", table)
    with pytest.raises(DataDirError, match=r"payments\.parquet: row 5, column 'amount'"):
        read_dir(copy)


def test_bad_country_in_logins_is_reported(copy):
    table = pq.read_table(copy / "logins.parquet")
    country = table["country"].to_pylist()
    country[3] = "XX"
    table = table.set_column(table.schema.get_field_index("country"), "country",
                             pa.array(country, pa.string()))
    _replace(copy, "logins", table)
    with pytest.raises(DataDirError, match=r"logins\.parquet: row 3, column 'country'"):
        read_dir(copy)


def test_naive_timestamps_are_rejected(copy):
    table = pq.read_table(copy / "payments.parquet")
    naive = table["ts"].cast(pa.timestamp("us"))
    table = table.set_column(table.schema.get_field_index("ts"), "ts", naive)
    _replace(copy, "payments", table)
    with pytest.raises(DataDirError, match=r"column 'ts' must be timezone-aware"):
        read_dir(copy)


def test_rows_out_of_time_order_are_rejected(copy):
    table = pq.read_table(copy / "payments.parquet")
    order = list(range(table.num_rows))
    order[10], order[40] = order[40], order[10]
    _replace(copy, "payments", table.take(pa.array(order)))
    with pytest.raises(DataDirError, match=r"row 11, column 'ts': out of time order"):
        read_dir(copy)


def test_duplicate_event_ids_are_rejected(copy):
    table = pq.read_table(copy / "logins.parquet")
    ids = table["event_id"].to_pylist()
    ids[8] = ids[7]
    table = table.set_column(0, "event_id", pa.array(ids, pa.string()))
    _replace(copy, "logins", table)
    with pytest.raises(DataDirError, match=r"row 8, column 'event_id': duplicate id"):
        read_dir(copy)


def test_invalid_jsonl_line_is_reported(result, tmp_path):
    path = write_dir(result, tmp_path / "j", fmt="jsonl")
    lines = (path / "labels.jsonl").read_bytes().splitlines()
    lines[1] = b'{"label_id": "x", "confirmed_at": "2026-01-01T00:00:00", "account_id": "a"}'
    (path / "labels.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataDirError, match=r"labels\.jsonl: row 1, column 'confirmed_at'"):
        read_dir(path)


def test_not_a_directory(tmp_path):
    with pytest.raises(DataDirError, match="not a directory"):
        read_dir(tmp_path / "nope")


def test_ordered_events_merge_kinds_in_time_and_respect_bounds(written):
    data = read_dir(written)
    events = list(ordered_events(data))
    n_acc = len(data.accounts)
    assert all(isinstance(e, Account) for e in events[:n_acc])
    rest = events[n_acc:]
    assert len(rest) == len(data.payments) + len(data.logins) + len(data.labels)
    times = [e.t for e in rest]
    assert times == sorted(times)
    mid = data.payments[len(data.payments) // 2].ts
    later = [e for e in ordered_events(data, start=mid) if not isinstance(e, Account)]
    assert later and all(e.t >= mid.timestamp() for e in later)
    earlier = [e for e in ordered_events(data, end=mid) if not isinstance(e, Account)]
    assert len(earlier) + len(later) == len(rest)


def test_timestamps_in_another_zone_are_accepted(copy):
    table = pq.read_table(copy / "payments.parquet")
    local = table["ts"].cast(pa.timestamp("us", tz="Asia/Ho_Chi_Minh"))
    table = table.set_column(table.schema.get_field_index("ts"), "ts", local)
    _replace(copy, "payments", table)
    data = read_dir(copy)
    assert data.payments[0].t == pc.min(table["ts"]).as_py().timestamp()
