"""The command line under bad arguments and a broken environment: one line on stderr that says
what is wrong and how to fix it, a non-zero exit code (2 for what the user must fix), never a
traceback (findings of the CLI fuzzing review, each pinned here).

Nothing here starts a service: commands run in-process on a temporary data directory, and the
few that would reach Kafka or a long simulation are refused before they could."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from canhgiac import cmd_demo, cmd_keys, cmd_score
from canhgiac.cli import UsageError, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own data directory and working directory; none of the shell's CANHGIAC_* settings."""
    for name in list(os.environ):
        if name.startswith("CANHGIAC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path / "state"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


def run(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of ``canhgiac argv`` (a parser error is a SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0], err
    return lines[0]


# ------------------------------------------------------------------ 1. keys revoke


@pytest.mark.parametrize("arg", ["99999999999999999999999999", "9223372036854775808",
                                 "2147483648", "²"])
def test_revoking_an_id_beyond_an_sql_integer_is_no_active_key(arg, capsys):
    """Key ids are an INTEGER column: 32 bits on PostgreSQL, where a larger id raised in the
    driver (and the message blamed the store's URL)."""
    code, err = run(["keys", "revoke", arg], capsys)
    assert code == 2
    line = one_line(err)
    assert f"no active key '{arg}'" in line and "2147483647" in line


def test_a_key_named_by_a_huge_number_is_revoked_by_its_id(capsys):
    name = "9" * 30
    assert main(["keys", "create", "--role", "viewer", "--name", name]) == 0
    key_id = capsys.readouterr().out.split()[2]
    code, err = run(["keys", "revoke", name], capsys)
    assert code == 2 and f"by its id {key_id}" in one_line(err)
    assert main(["keys", "revoke", key_id]) == 0


# ------------------------------------------------------------------ 2. report dates


@pytest.mark.parametrize("date_from,date_to", [
    ("0001-01-01", "0001-01-02"),
    ("9999-12-30", "9999-12-31"),
    ("0001-01-01T00:00:00+01:00", "0001-01-02T00:00:00+01:00"),
    ("9999-12-31T00:00:00-01:00", "9999-12-31T23:00:00-01:00"),
    ("2026-01-01", "9999-12-31"),
    ("1969-12-31", "2026-01-01"),
])
def test_report_dates_outside_1970_9000_are_one_line(date_from, date_to, capsys):
    code, err = run(["report", "results", "--from", date_from, "--to", date_to], capsys)
    assert code == 2
    assert "between 1970 and 9000" in one_line(err)


def test_report_dates_inside_the_bounds_still_work(capsys):
    code, err = run(["report", "results", "--from", "2026-01-01", "--to", "2026-01-02",
                     "--format", "json"], capsys)
    assert code == 0, err


# ------------------------------------------------------------------ 3. report --out


@pytest.mark.parametrize("out", ["{tmp}/missing/dir/x.xlsx", "/proc/x.json"])
def test_a_report_that_cannot_be_written_is_one_line(out, tmp_path, capsys):
    out = out.format(tmp=tmp_path)
    code, err = run(["report", "results", "--from", "2026-01-01", "--to", "2026-01-02",
                     "--out", out], capsys)
    assert code == 2
    assert f"cannot write {out}" in one_line(err)


# ------------------------------------------------------------------ 4. and 7. simulate


def test_simulate_out_an_existing_file_is_refused_before_simulating(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    code, err = run(["simulate", "--accounts", "50", "--days", "1", "--out", str(target)],
                    capsys)
    assert code == 2 and "is a file, not a directory" in one_line(err)
    assert target.read_text() == "keep me"


def test_simulate_out_an_uncreatable_directory_is_one_line(capsys):
    code, err = run(["simulate", "--accounts", "50", "--days", "1", "--out", "/proc/nope"],
                    capsys)
    assert code == 2 and "cannot create /proc/nope" in one_line(err)


@pytest.mark.parametrize("start", ["9999-12-31", "0001-01-01", "9000-01-02"])
def test_simulate_start_out_of_range_is_one_line(start, tmp_path, capsys):
    code, err = run(["simulate", "--start", start, "--days", "5", "--accounts", "50",
                     "--out", str(tmp_path / "sim")], capsys)
    assert code == 2 and "--start" in one_line(err)
    assert not (tmp_path / "sim").exists()


def test_simulate_out_empty_is_refused(tmp_path, capsys):
    code, err = run(["simulate", "--accounts", "50", "--days", "1", "--out", ""], capsys)
    assert code == 2 and "empty" in one_line(err)
    assert list(Path.cwd().iterdir()) == []


def test_an_empty_data_dir_setting_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("CANHGIAC_DATA_DIR", "")
    code, err = run(["keys", "list"], capsys)
    assert code == 2 and "CANHGIAC_DATA_DIR" in one_line(err) and "empty" in err
    assert list(Path.cwd().iterdir()) == []  # no case store in the working directory


# ------------------------------------------------------------------ 5. broken case store


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "random.db"
    path.write_bytes(bytes(range(256)) * 16)
    return f"sqlite:///{path}"


STORES = {
    "not a URL": ("CANHGIAC_CASE_STORE_URL", lambda tmp: "notaurl"),
    "unknown dialect": ("CANHGIAC_CASE_STORE_URL", lambda tmp: "foo://x"),
    "unreachable": ("CANHGIAC_CASE_STORE_URL",
                    lambda tmp: "postgresql+psycopg://u:secret@127.0.0.1:1/x"),
    "no driver": ("CANHGIAC_CASE_STORE_URL", lambda tmp: "mysql://u:secret@127.0.0.1:1/x"),
    "not a database": ("CANHGIAC_CASE_STORE_URL", _not_a_database),
    "data dir uncreatable": ("CANHGIAC_DATA_DIR", lambda tmp: "/proc/nope"),
    "data dir is a file": ("CANHGIAC_DATA_DIR", lambda tmp: str(tmp / "a-file")),
}
STORE_COMMANDS = [["keys", "list"], ["keys", "revoke", "x"], ["db", "current"],
                  ["db", "upgrade"], ["db", "purge", "--dry-run"],
                  ["report", "results", "--from", "2026-01-01", "--to", "2026-01-02"]]


@pytest.mark.parametrize("store", list(STORES))
@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_broken_case_store_is_one_line_naming_the_setting(store, argv, tmp_path,
                                                            monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    variable, value = STORES[store]
    monkeypatch.setenv(variable, value(tmp_path))
    code, err = run(argv, capsys)
    assert code == 2
    line = one_line(err)
    assert variable in line, line
    assert "secret" not in line  # the URL's password is never printed


# ------------------------------------------------------------------ 6. MLflow


def test_an_unusable_mlflow_tracking_uri_is_one_line(tmp_path):
    # a subprocess: the real stderr (MLflow prints a warning there at import), and MLflow's
    # process-wide tracking URI stays out of the test process
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANHGIAC_")}
    env.update(CANHGIAC_DATA_DIR=str(tmp_path / "state"), CANHGIAC_MLFLOW_TRACKING_URI="notauri")
    proc = subprocess.run(
        [sys.executable, "-m", "canhgiac.cli", "promote", "--force", "--reason", "x"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert "CANHGIAC_MLFLOW_TRACKING_URI" in line and "MlflowException" in line


# ------------------------------------------------------------------ 8. nan and inf


@pytest.fixture
def no_demo(monkeypatch):
    """``demo`` runs its own argument check and stops there, whatever it accepts."""
    def checked_only(args: argparse.Namespace, settings: object) -> int:
        cmd_demo._check(args)
        return 99

    monkeypatch.setattr(cmd_demo, "run", checked_only)


@pytest.mark.parametrize("argv", [
    ["demo", "--duration", "nan"], ["demo", "--duration", "inf"], ["demo", "--rate", "nan"],
    ["demo", "--rate", "inf"], ["demo", "--rate=-inf"], ["demo", "--rate", "1e999"],
    ["promote", "--margin", "nan"], ["promote", "--margin", "inf"],
    ["replay", "--data", "x", "--rate", "inf"], ["simulate", "--kafka", "--rate", "nan"],
    ["simulate", "--out", "x", "--fraud-rate", "nan"],
    ["train", "--data", "x", "--warmup-days", "nan"], ["train", "--data", "x", "--test-days",
                                                       "inf"],
    ["train", "--data", "x", "--max-rejects", "nan"],
    ["train", "--data", "x", "--negative-sample", "nan"],
])
def test_a_non_finite_number_is_refused_by_the_parser(argv, no_demo, capsys):
    code, err = run(argv, capsys)
    assert code == 2
    assert "is not a finite number" in one_line(err)


@pytest.mark.parametrize("option", ["rate", "duration"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_the_demo_check_refuses_non_finite_numbers_too(option, value):
    args = argparse.Namespace(accounts=2000, history_days=60, warm_days=31, rate=None,
                              duration=None)
    setattr(args, option, value)
    with pytest.raises(UsageError, match=f"--{option}"):
        cmd_demo._check(args)


@pytest.mark.parametrize("variable", ["CANHGIAC_PROMOTE_MARGIN", "CANHGIAC_WARMUP_LOOKBACK_S",
                                      "CANHGIAC_REVIEW_THRESHOLD"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_setting_is_refused(variable, value, monkeypatch, capsys):
    monkeypatch.setenv(variable, value)
    code, err = run(["keys", "list"], capsys)
    assert code == 2 and variable in one_line(err)


# ------------------------------------------------------------------ 9. report format


@pytest.mark.parametrize("out,fmt", [("x.pdf", "xlsx"), ("x.xlsx", "json"), ("x.json", "pdf"),
                                     ("x.txt", "table")])
def test_a_report_format_that_contradicts_out_is_refused(out, fmt, tmp_path, capsys):
    target = tmp_path / out
    code, err = run(["report", "results", "--from", "2026-01-01", "--to", "2026-01-02",
                     "--out", str(target), "--format", fmt], capsys)
    assert code == 2 and "--format" in one_line(err)
    assert not target.exists()


def test_a_report_format_for_an_unknown_extension_is_still_taken(tmp_path, capsys):
    target = tmp_path / "report.txt"
    code, err = run(["report", "results", "--from", "2026-01-01", "--to", "2026-01-02",
                     "--out", str(target), "--format", "json"], capsys)
    assert code == 0, err
    assert target.read_text().startswith("{")


# ------------------------------------------------------------------ 10. empty paths


@pytest.mark.parametrize("argv", [
    ["watchlist", "load", "--dry-run", ""], ["watchlist", "load", "--dry-run", "  "],
    ["report", "results", "--from", "2026-01-01", "--to", "2026-01-02", "--out", ""],
])
def test_an_empty_path_is_said_to_be_empty(argv, capsys):
    code, err = run(argv, capsys)
    assert code == 2 and "the path is empty" in one_line(err)


# ------------------------------------------------------------------ the safety net


def _failing(exc: BaseException):
    def fail(args: argparse.Namespace, settings: object) -> int:
        raise exc

    return fail


def test_an_environmental_failure_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setattr(cmd_keys, "run", _failing(PermissionError(13, "Permission denied",
                                                                  "/srv/x")))
    code, err = run(["keys", "list"], capsys)
    assert code == 1
    line = one_line(err)
    assert line.startswith("canhgiac keys: error: PermissionError: [Errno 13] Permission denied")
    assert "CANHGIAC_DEBUG=1" in line


def test_a_database_failure_is_one_line_without_the_sql(monkeypatch, capsys):
    import sqlalchemy.exc

    exc = sqlalchemy.exc.OperationalError("SELECT secret FROM t", {}, Exception("disk I/O error"))
    monkeypatch.setattr(cmd_keys, "run", _failing(exc))
    code, err = run(["keys", "list"], capsys)
    assert code == 1
    line = one_line(err)
    assert "disk I/O error" in line and "SELECT" not in line


def test_canhgiac_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setenv("CANHGIAC_DEBUG", "1")
    monkeypatch.setattr(cmd_keys, "run", _failing(OSError(5, "Input/output error")))
    with pytest.raises(OSError, match="Input/output"):
        main(["keys", "list"])


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), BrokenPipeError(32, "Broken pipe"),
                                 SystemExit(3)])
def test_bugs_broken_pipes_and_exits_are_not_caught(exc, monkeypatch):
    monkeypatch.setattr(cmd_keys, "run", _failing(exc))
    with pytest.raises(type(exc)):
        main(["keys", "list"])


def test_ctrl_c_is_still_exit_130(monkeypatch):
    monkeypatch.setattr(cmd_keys, "run", _failing(KeyboardInterrupt()))
    assert main(["keys", "list"]) == 130


def test_a_service_keeps_its_traceback_and_exit_code(monkeypatch):
    monkeypatch.setattr(cmd_score, "run", _failing(OSError(98, "Address already in use")))
    with pytest.raises(OSError, match="Address already in use"):
        main(["score"])


def test_an_unreachable_broker_is_one_line_naming_the_setting(monkeypatch, tmp_path, capsys):
    """(From a review.) ``watchlist load`` with a broker that cannot be reached ended in
    kafka-python's KafkaTimeoutError traceback: it is an environmental failure like the
    database's, one line naming CANHGIAC_KAFKA_BOOTSTRAP."""
    from kafka.errors import KafkaTimeoutError

    from canhgiac import cmd_watchlist
    from canhgiac.cli import environmental, first_line

    def no_broker(*args, **kwargs):
        raise KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:1']")

    monkeypatch.setattr(cmd_watchlist, "run", no_broker)
    csv = tmp_path / "wl.csv"
    csv.write_text("bank,account,source,listed_at,reason\nVCB,123,police,2026-01-01T00:00:00Z,x\n")
    code, err = run(["watchlist", "load", str(csv)], capsys)
    line = one_line(err)
    assert code == 1 and "CANHGIAC_KAFKA_BOOTSTRAP" in line
    assert "KafkaTimeoutError: Unable to bootstrap" in line  # the class named once
    assert environmental(KafkaTimeoutError("x"))
    assert first_line(KafkaTimeoutError("x")) == "KafkaTimeoutError: x"


def test_the_report_range_message_gives_the_first_day_that_passes(capsys):
    """(From a review.) 1970-01-01 as a local day starts in 1969 (UTC): the message names the
    exact bound and the first whole day, instead of contradicting itself."""
    code, err = run(["report", "results", "--from", "1970-01-01", "--to", "1970-01-31"], capsys)
    line = one_line(err)
    assert code == 2 and "1970-01-01T00:00:00Z" in line and "1970-01-02" in line
    code, err = run(["report", "results", "--from", "1970-01-02", "--to", "1970-01-03",
                     "--format", "json"], capsys)
    assert code == 0, err


def test_a_watchlist_path_that_is_no_regular_file_is_refused_at_once(tmp_path, capsys,
                                                                   monkeypatch):
    """``watchlist load /dev/urandom`` read forever (the CSV is read whole); a directory, a
    device or a file past the size limit is one line instead."""
    from canhgiac import cmd_watchlist

    for path in ("/dev/urandom", str(tmp_path)):
        code, err = run(["watchlist", "load", "--dry-run", path], capsys)
        assert code == 2 and "not a regular file" in one_line(err), err
    big = tmp_path / "big.csv"
    big.write_text("bank,account,source,listed_at,reason\n" + "x" * 200)
    monkeypatch.setattr(cmd_watchlist, "MAX_FILE_BYTES", 100)
    code, err = run(["watchlist", "load", "--dry-run", str(big)], capsys)
    assert code == 2 and "split it" in one_line(err), err


@pytest.mark.parametrize(("argv", "words"), [
    (["--valid-days", "-3"], "--valid-days must be more than 0"),
    (["--test-days", "0"], "--test-days must be more than 0"),
    (["--gap-days", "-1"], "--gap-days must be 0 days or more"),
    (["--warmup-days", "-0.5"], "--warmup-days must be 0 days or more"),
    (["--account-label-lookback-days", "-7"], "--account-label-lookback-days must be 0"),
    (["--threads", "0"], "--threads must be 1 or more"),
])
def test_train_refuses_negative_windows_and_no_threads_before_reading_data(argv, words, capsys,
                                                                          tmp_path):
    """(From the CLI review's list.) A negative window reached the data check, which printed it
    as 'validation -3' days; it is refused up front, naming the option."""
    code, err = run(["train", "--data", str(tmp_path / "none"), *argv], capsys)
    assert code == 2 and words in one_line(err), err
