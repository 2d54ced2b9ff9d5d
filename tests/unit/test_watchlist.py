"""The watch-list contract, its CSV parser and its reason phrase; labels naming a counterparty."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.events import Label, Rejection, WatchEntry, decode, decode_label, decode_watch, encode
from features.watchlist import parse_watchlist_csv
from models.reasons import watchlist_phrase
from training.datadir import DataDirError, read_dir, write_dir

WATCH = {"bank": "VCB", "account": "0071000123456", "source": "SIMO",
         "listed_at": "2026-03-12T09:00:00+07:00", "reason": "receiving scam money"}
LABEL = {"label_id": "lb-1", "confirmed_at": "2026-02-20T10:00:00Z", "account_id": "A",
         "label": "fraud", "event_id": "e-1", "counterparty_account": "0071000123456",
         "counterparty_bank": "VCB"}


def raw(d: dict) -> bytes:
    return json.dumps(d, ensure_ascii=False).encode()


def test_watch_entries_decode_round_trip_and_key_by_bank_and_account():
    entry = decode_watch(raw({**WATCH, "delisted_at": "2026-04-01T00:00:00Z", "case": "77"}))
    assert isinstance(entry, WatchEntry)
    assert entry.key == "VCB/0071000123456" and entry.extra == {"case": "77"}
    assert entry.delisted_at == datetime(2026, 4, 1, tzinfo=UTC)
    assert decode("watchlist", encode(entry)) == entry


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"bank": None}, "bank", "missing"),
    ({"account": ""}, "account", "empty"),
    ({"source": 3}, "source", "string"),
    ({"listed_at": "2026-03-12"}, "listed_at", "RFC 3339"),
    ({"listed_at": "2026-03-12T09:00:00"}, "listed_at", "timezone"),
    ({"delisted_at": "2026-03-01T00:00:00Z"}, "delisted_at", "before listed_at"),
    ({"reason": None}, "reason", "missing"),
])
def test_each_invalid_watch_field_is_named(change, field, words):
    d = {**WATCH, **change}
    if change.get(field, 0) is None:
        del d[field]
    rej = decode("watchlist", raw(d))
    assert isinstance(rej, Rejection)
    assert rej.field == field and words in rej.reason


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_not_raised(payload):
    assert isinstance(decode("watchlist", payload), Rejection)


def test_labels_carry_their_counterparty():
    label = decode_label(raw(LABEL))
    assert isinstance(label, Label)
    assert (label.counterparty_account, label.counterparty_bank) == ("0071000123456", "VCB")
    assert decode("labels", encode(label)) == label
    rej = decode("labels", raw({**LABEL, "counterparty_account": 12}))
    assert isinstance(rej, Rejection) and rej.field == "counterparty_account"


def test_the_reason_phrase_says_who_reported_the_account_when_and_why():
    entry = decode_watch(raw(WATCH))
    assert isinstance(entry, WatchEntry)
    assert watchlist_phrase(entry) == ("beneficiary reported to SIMO on 12/03 for receiving"
                                       " scam money")
    police = WatchEntry("CGB", "1", "police", datetime(2026, 3, 11, 20, tzinfo=UTC), "mule")
    assert watchlist_phrase(police, beneficiary=False) == (
        "account holder reported to the police on 12/03 for mule")  # 03:00 local, the 12th


def test_csv_rows_become_entries_and_bad_rows_are_listed_with_their_line():
    text = ("\ufeffbank,account,source,listed_at,reason,delisted_at,note\n"
            "VCB,111,SIMO,2026-03-12T09:00:00+07:00,receiving scam money,,x\n"
            "VCB,222,SIMO,12/03/2026,scam,,\n"
            "TCB,333,police,2026-03-01T00:00:00Z,mule,2026-02-01T00:00:00Z,\n"
            "\n"
            "ACB,444,bank,2026-03-02T00:00:00Z,mule\n"
            "VCB,111,SIMO,2026-03-12T09:00:00+07:00,receiving scam money,2026-05-01T00:00:00Z,\n")
    parsed = parse_watchlist_csv(text)
    assert [(e.key, e.delisted_at is not None, dict(e.extra)) for e in parsed.entries] == [
        ("VCB/111", True, {})]  # the later row for VCB/111 replaced the first
    assert [(line, r.field) for line, r in parsed.rejects] == [
        (3, "listed_at"), (4, "delisted_at"), (6, "")]
    assert "5 cells" in parsed.rejects[2][1].reason


def test_a_csv_without_the_required_columns_is_one_reject():
    parsed = parse_watchlist_csv("bank,account\nVCB,1\n")
    assert parsed.entries == [] and [r.field for _, r in parsed.rejects] == ["source"]
    assert parse_watchlist_csv("").rejects[0][1].reason.startswith("empty file")


@given(st.text(max_size=400))
def test_arbitrary_csv_text_never_raises(text):
    parsed = parse_watchlist_csv("bank,account,source,listed_at,reason\n" + text)
    assert all(isinstance(e, WatchEntry) for e in parsed.entries)
    assert all(isinstance(r, Rejection) for _, r in parsed.rejects)
    parse_watchlist_csv(text)


class _Tables:
    def __init__(self, tables: dict[str, pa.Table]) -> None:
        self._tables = tables

    def tables(self) -> dict[str, pa.Table]:
        return self._tables


def _minimal(watch: pa.Table | None) -> _Tables:
    ts = pa.array([datetime(2026, 3, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    tables = {
        "payments": pa.table({"event_id": ["e1"], "ts": ts, "account_id": ["A"],
                              "direction": ["debit"], "amount": [1e6],
                              "counterparty_account": ["B"], "counterparty_bank": ["CGB"],
                              "channel": ["mobile"]}),
        "logins": pa.table({"event_id": ["l1"], "ts": ts, "account_id": ["A"],
                            "success": [True], "ip": ["10.0.0.1"], "country": ["VN"],
                            "device_id": ["d"], "channel": ["mobile"]}),
        "accounts": pa.table({"account_id": ["A"], "customer_id": ["c"], "type": ["personal"],
                              "opened_at": ts, "kyc_country": ["VN"]}),
        "labels": pa.table({"label_id": ["x"], "confirmed_at": ts, "account_id": ["A"],
                            "label": ["fraud"]}),
    }
    if watch is not None:
        tables["watchlist"] = watch
    return _Tables(tables)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_the_data_directory_reads_an_optional_watchlist(tmp_path, fmt):
    ts = pa.array([datetime(2026, 3, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC"))
    watch = pa.table({"bank": ["VCB", "TCB"], "account": ["1", "1"], "source": ["SIMO"] * 2,
                      "listed_at": ts, "reason": ["scam", "mule"]})
    write_dir(_minimal(watch), tmp_path / "with", fmt)
    assert [e.key for e in read_dir(tmp_path / "with").watchlist] == ["VCB/1", "TCB/1"]
    write_dir(_minimal(None), tmp_path / "without", fmt)
    assert read_dir(tmp_path / "without").watchlist == []
    dup = pa.table({"bank": ["VCB", "VCB"], "account": ["1", "1"], "source": ["SIMO"] * 2,
                    "listed_at": ts, "reason": ["scam", "mule"]})
    write_dir(_minimal(dup), tmp_path / "dup", fmt)
    with pytest.raises(DataDirError, match="duplicate"):
        read_dir(tmp_path / "dup")


def test_a_payment_s_watch_list_sentences_are_as_of_its_time():
    from features.events import Payment
    from features.reference import ReferenceData
    from models.reasons import watchlist_reasons

    entry = decode_watch(raw(WATCH))
    assert isinstance(entry, WatchEntry)
    ref = ReferenceData.of(watchlist=[entry, WatchEntry("CGB", "A", "police", entry.listed_at,
                                                        "mule account")])
    pay = Payment("e1", datetime(2026, 3, 13, tzinfo=UTC), "A", "debit", 5e6, "VND",
                  entry.account, "VCB", "mobile")
    assert watchlist_reasons(ref, pay) == [
        "beneficiary reported to SIMO on 12/03 for receiving scam money",
        "account holder reported to the police on 12/03 for mule account"]
    early = Payment("e0", datetime(2026, 3, 11, tzinfo=UTC), "A", "debit", 5e6, "VND",
                    entry.account, "VCB", "mobile")
    assert watchlist_reasons(ref, early) == []


def test_an_alert_s_watch_list_reason_replaces_the_model_s_phrase_or_is_added():
    import math

    from features.events import Payment
    from features.reference import ReferenceData
    from models.reasons import Reason, with_watchlist

    entry = decode_watch(raw(WATCH))
    assert isinstance(entry, WatchEntry)
    ref = ReferenceData.of(watchlist=[entry])
    pay = Payment("e1", datetime(2026, 3, 13, tzinfo=UTC), "A", "debit", 5e6, "VND",
                  entry.account, "VCB", "mobile")
    sentence = "beneficiary reported to SIMO on 12/03 for receiving scam money"
    model = [Reason("amount", 5e6, 0.4, "5 M VND"), Reason("cp_watchlisted", 1.0, 0.3, "x")]
    out = with_watchlist(model, ref, pay)
    assert [(r.feature, r.contribution, r.text) for r in out] == [
        ("amount", 0.4, "5 M VND"), ("cp_watchlisted", 0.3, sentence)]
    [first, added] = with_watchlist(model[:1], ref, pay)
    assert first == model[0] and (added.feature, added.value, added.text) == (
        "cp_watchlisted", 1.0, sentence) and math.isnan(added.contribution)
    assert with_watchlist(model, ReferenceData(), pay) == model  # nobody listed: unchanged
