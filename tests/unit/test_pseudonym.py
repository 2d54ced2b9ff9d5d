"""models.pseudonym and the log formatter: keyed, stable pseudonyms; the key from the setting
or a private per-data-dir file; no raw account id in a formatted log line."""

from __future__ import annotations

import logging
import os
import stat
import threading

from hypothesis import given
from hypothesis import strategies as st

from canhgiac.logs import KeyValueFormatter
from canhgiac.settings import Settings
from models.pseudonym import KEY_FILE, Pseudonymiser


def test_keyed_stable_and_not_the_id(tmp_path):
    a = Pseudonymiser(b"k1")
    assert a("123456789012") == a("123456789012")
    assert a("123456789012") != a("123456789013")
    assert a("123456789012") != Pseudonymiser(b"k2")("123456789012")
    assert "123456789012" not in a("123456789012")
    assert len(a("x")) == 22 and a("x").startswith("p-")


@given(st.text())
def test_any_text_has_a_pseudonym(text):
    p = Pseudonymiser(b"key")(text)
    assert p.startswith("p-") and len(p) == 22


def test_the_key_file_is_created_once_private_and_reused(tmp_path):
    made: list[Pseudonymiser] = []
    threads = [threading.Thread(target=lambda: made.append(
        Pseudonymiser.for_data_dir(tmp_path / "state"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({p.key for p in made}) == 1  # concurrent first uses agree on one key
    path = tmp_path / "state" / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Pseudonymiser.for_data_dir(tmp_path / "state").key == made[0].key
    assert sorted(os.listdir(tmp_path / "state")) == [KEY_FILE]  # no temporary files left


def test_the_setting_wins_over_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CANHGIAC_PSEUDONYM_KEY", "s3cret")
    settings = Settings(data_dir=tmp_path)
    assert settings.pseudonymiser().key == b"s3cret"
    assert not (tmp_path / KEY_FILE).exists()
    assert "s3cret" not in repr(settings)


def _line(formatter, msg, **extra):
    record = logging.LogRecord("serving.outbox", logging.WARNING, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return formatter.format(record)


def test_log_lines_carry_pseudonyms_not_account_ids(tmp_path):
    p = Pseudonymiser(b"k")
    fmt = KeyValueFormatter("%(levelname)s %(message)s", lambda: p)
    line = _line(fmt, "outbox event refused", outbox_id=3, account_id="389012345678",
                 customer_id="C100000001", path="/v1/accounts/389012345678/network",
                 accounts=["111122223333"])
    assert "389012345678" not in line and "C100000001" not in line
    assert f"account_id={p('389012345678')}" in line
    assert f"path=/v1/accounts/{p('389012345678')}/network" in line
    assert f"customer_id={p('C100000001')}" in line and "outbox_id=3" in line
    # the ranked list's path names no account; counts stay numbers
    line = _line(fmt, "x", path="/v1/accounts/high-risk", accounts=12)
    assert "path=/v1/accounts/high-risk" in line and "accounts=12" in line
    # percent-encoded ids get the pseudonym of the id itself
    line = _line(fmt, "x", path="/v1/accounts/%EF%BC%93")
    assert f"path=/v1/accounts/{p('３')}" in line
    # no pseudonymiser and no id field: the key file is never created
    KeyValueFormatter("%(message)s", lambda: Pseudonymiser.for_data_dir(tmp_path)).format(
        logging.LogRecord("x", logging.INFO, __file__, 1, "plain", None, None))
    assert not (tmp_path / KEY_FILE).exists()


@given(st.dictionaries(st.sampled_from(["account_id", "path", "customer_id", "other"]),
                       st.one_of(st.text(), st.integers(), st.none()), max_size=4))
def test_the_formatter_takes_any_field_values(extra):
    fmt = KeyValueFormatter("%(message)s", lambda: Pseudonymiser(b"k"))
    line = _line(fmt, "m", **extra)
    assert "\n" not in line
    if extra.get("account_id") is not None:
        assert f"account_id={Pseudonymiser(b'k')(extra['account_id'])}" in line


def test_sql_parameters_never_reach_error_messages(tmp_path):
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from serving.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(DBAPIError) as caught, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE account_id = :a"),
                      {"a": "389012345678"})
    assert "no_such_table" in str(caught.value) and "389012345678" not in str(caught.value)
    engine.dispose()
