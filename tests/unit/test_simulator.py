"""The bank simulator: contracts, determinism, fraud rate, and each typology's mechanism."""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.events import decode, encode
from training.datadir import from_tables, write_dir
from training.simulator import TYPOLOGIES, SimConfig, simulate

CFG = SimConfig(accounts=1500, days=30, seed=11, fraud_rate=0.01)
LO, HI = CFG.mule_forward_minutes


@pytest.fixture(scope="module")
def result():
    return simulate(CFG)


@pytest.fixture(scope="module")
def frames(result):
    pay = result.payments.to_pandas().merge(result.truth.to_pandas(), on="event_id")
    return {
        "pay": pay,
        "logins": result.logins.to_pandas(),
        "accounts": result.accounts.to_pandas().merge(result.accounts_truth.to_pandas(),
                                                      on="account_id"),
        "labels": result.labels.to_pandas(),
        "watchlist": result.watchlist.to_pandas(),
    }


def _digest(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


# ------------------------------------------------------------------ contracts and order


def test_every_event_decodes_with_the_contract_decoders(result):
    data = from_tables(result)  # raises DataDirError on the first invalid row
    assert len(data.payments) == result.payments.num_rows > 50_000
    assert len(data.logins) == result.logins.num_rows
    assert len(data.accounts) == CFG.accounts
    assert len(data.labels) == result.labels.num_rows > 0
    assert all(p.ts.tzinfo is not None for p in data.payments[:1000])


def test_every_event_survives_the_kafka_encoding():
    data = from_tables(simulate(SimConfig(accounts=200, days=5, seed=8, fraud_rate=0.01)))
    for kind in ("payments", "logins", "accounts", "labels"):
        for event in getattr(data, kind):
            assert decode(kind, encode(event)) == event


def test_ids_unique_and_rows_in_event_time_order(frames):
    pay, logins, labels = frames["pay"], frames["logins"], frames["labels"]
    assert pay["event_id"].is_unique and logins["event_id"].is_unique
    assert labels["label_id"].is_unique
    assert not set(pay["event_id"]) & set(logins["event_id"])
    assert pay["ts"].is_monotonic_increasing
    assert logins["ts"].is_monotonic_increasing
    assert labels["confirmed_at"].is_monotonic_increasing
    assert frames["accounts"]["account_id"].is_unique


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    cfg = SimConfig(accounts=300, days=10, seed=5, fraud_rate=0.006)
    a = _digest(write_dir(simulate(cfg), tmp_path / "a"))
    b = _digest(write_dir(simulate(cfg), tmp_path / "b"))
    assert a == b
    assert set(a) == {f"{n}.parquet" for n in ("payments", "logins", "accounts", "labels",
                                               "truth", "accounts_truth", "watchlist")}
    j1 = _digest(write_dir(simulate(cfg), tmp_path / "j1", fmt="jsonl"))
    j2 = _digest(write_dir(simulate(cfg), tmp_path / "j2", fmt="jsonl"))
    assert j1 == j2
    other = SimConfig(accounts=300, days=10, seed=6, fraud_rate=0.006)
    c = _digest(write_dir(simulate(other), tmp_path / "c"))
    assert c["payments.parquet"] != a["payments.parquet"]


@pytest.mark.parametrize("rate", [0.001, 0.004, 0.01])
def test_fraud_rate_is_honoured(rate):
    summary = simulate(SimConfig(accounts=800, days=20, seed=3, fraud_rate=rate)).summary()
    assert 0.85 * rate <= summary["fraud_rate"] <= 1.2 * rate
    assert summary["fraud_payments"] == sum(summary["typology_payments"].values())


def test_zero_fraud_rate_gives_no_fraud_and_no_fraud_roles():
    r = simulate(SimConfig(accounts=200, days=7, seed=3, fraud_rate=0.0))
    s = r.summary()
    assert s["fraud_payments"] == 0
    assert set(s["roles"]) == {"normal"}


@pytest.mark.parametrize("kwargs", [
    {"accounts": 0}, {"days": 0}, {"fraud_rate": 2.0}, {"fraud_rate": -0.1}, {"seed": -1},
    {"mule_forward_minutes": (5.0, 1.0)}, {"label_coverage": 1.5},
])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        simulate(SimConfig(**kwargs))


def test_the_start_date_sets_the_first_local_day():
    r = simulate(SimConfig(accounts=100, days=3, seed=1, start=date(2026, 2, 10)))
    first = r.payments["ts"][0].as_py()
    assert first >= pd.Timestamp("2026-02-09T17:00:00Z")
    assert r.payments["ts"][-1].as_py() < pd.Timestamp("2026-02-13T17:00:00Z")


# ------------------------------------------------------------------ structure of the bank


def test_every_typology_appears(result):
    s = result.summary()
    for name in TYPOLOGIES:
        assert s["typology_payments"][name] > 0, name
        assert s["typology_cases"][name] > 0, name
    assert {"mule", "shell", "victim", "takeover_victim", "normal"} <= set(s["roles"])


def test_intra_bank_transfers_appear_twice(frames):
    pay = frames["pay"]
    own = set(frames["accounts"]["account_id"])
    debits = pay[(pay["direction"] == "debit") & pay["counterparty_account"].isin(own)]
    credits = pay[pay["direction"] == "credit"]
    assert (debits["counterparty_bank"] == CFG.bank_code).all()
    key = ["ts", "amount"]
    left = debits.rename(columns={"account_id": "payer", "counterparty_account": "payee"})
    right = credits.rename(columns={"account_id": "payee", "counterparty_account": "payer"})
    joined = left.merge(right[["payee", "payer", *key]], on=["payer", "payee", *key])
    assert len(joined) >= len(debits)
    assert len(debits) > 1000
    # other banks' accounts are counterparties only
    assert not set(pay.loc[pay["counterparty_bank"] != CFG.bank_code,
                           "counterparty_account"]) & own


def test_online_payments_follow_a_login_of_the_same_session(frames):
    pay, logins = frames["pay"], frames["logins"]
    online = pay[pay["session_id"].notna()]
    assert set(online["channel"]) <= {"mobile", "internet"}
    assert (online["direction"] == "debit").all()
    ok = logins[logins["success"]]
    first = ok.sort_values("ts").drop_duplicates("session_id")
    m = online.merge(first, on="session_id", suffixes=("", "_login"))
    assert len(m) == len(online)
    assert (m["account_id"] == m["account_id_login"]).all()
    assert (m["device_id"] == m["device_id_login"]).all()
    assert (m["country"] == m["country_login"]).all()
    assert (m["ip"] == m["ip_login"]).all()
    gap = (m["ts"] - m["ts_login"]).dt.total_seconds()
    assert (gap >= 0).all() and (gap <= 60 * 60).all()
    assert (gap <= 5 * 60).mean() > 0.99
    assert (~logins["success"]).sum() > 0


def test_daily_rhythm_salary_days_and_new_accounts(frames):
    pay, accounts = frames["pay"], frames["accounts"]
    local = pay["ts"].dt.tz_convert("Asia/Ho_Chi_Minh")
    by_hour = local.dt.hour.value_counts()
    assert by_hour.loc[[19, 20, 21]].sum() > 5 * by_hour.loc[[2, 3, 4]].sum()
    salary = pay[pay["description"] == "Tra luong thang"]
    assert len(salary) > 100
    assert salary["ts"].dt.tz_convert("Asia/Ho_Chi_Minh").dt.day.nunique() <= 8
    start = pd.Timestamp("2026-01-01T00:00:00+07:00")
    new = accounts[(accounts["opened_at"] >= start) & (accounts["role"] == "normal")]
    assert len(new) > 10


def test_tet_spike_in_purchases():
    r = simulate(SimConfig(accounts=400, days=45, seed=2, start=date(2026, 1, 20),
                           fraud_rate=0.0))
    pay = r.payments.to_pandas()
    day = pay["ts"].dt.tz_convert("Asia/Ho_Chi_Minh").dt.date
    qr = pay[pay["description"] == "Thanh toan QR"].groupby(day).size()
    before = qr.loc[date(2026, 2, 5):date(2026, 2, 14)].mean()
    quiet = qr.loc[date(2026, 1, 20):date(2026, 1, 29)].mean()
    assert before > 1.3 * quiet
    lixi = pay[pay["description"] == "Li xi Tet"]
    assert len(lixi) > 50


# ------------------------------------------------------------------ typology mechanisms


def test_mule_credits_come_from_many_senders_and_leave_within_the_delay(frames):
    pay, logins = frames["pay"], frames["logins"]
    mules = set(frames["accounts"].query("role == 'mule'")["account_id"])
    loud = pay[(pay["typology"] == "mule_ring") & pay["account_id"].isin(mules)]
    credits = loud[loud["direction"] == "credit"]
    senders = credits.groupby("account_id")["counterparty_account"].nunique()
    assert senders.max() >= 8
    fraud_in = pay[pay["is_fraud"] & (pay["direction"] == "credit")
                   & pay["account_id"].isin(mules)]
    for acc, out in loud[loud["direction"] == "debit"].groupby("account_id"):
        arrivals = fraud_in.loc[fraud_in["account_id"] == acc, "ts"].to_numpy()
        for ts in out["ts"].to_numpy():
            waited = (ts - arrivals[arrivals <= ts]) / np.timedelta64(1, "m")
            assert ((waited >= LO - 1e-6) & (waited <= HI + 1e-6)).any(), (acc, ts)
    # some rings are managed from Cambodia on devices shared across mules
    kh = logins[(logins["country"] == "KH") & logins["account_id"].isin(mules)]
    shared = kh.groupby("device_id")["account_id"].nunique()
    assert (shared >= 2).any()
    opened = frames["accounts"].set_index("account_id").loc[list(mules), "opened_at"]
    assert (opened >= pd.Timestamp("2025-10-01T00:00:00Z")).all()


def test_account_takeover_is_a_foreign_login_on_a_new_device_then_large_debits(frames):
    pay, logins = frames["pay"], frames["logins"]
    ato = pay[(pay["typology"] == "account_takeover") & (pay["direction"] == "debit")]
    assert len(ato) > 0
    kinds = []
    for acc, group in ato.groupby("account_id"):
        first = group["ts"].min()
        sess = logins[logins["session_id"].isin(group["session_id"])]
        attack = sess["ts"].min() - pd.Timedelta(hours=1)  # failed attempts come just before
        before = logins[(logins["account_id"] == acc) & (logins["ts"] < attack)]
        if (sess["country"] == "VN").all():  # by remote control of the victim's own phone
            assert set(sess["device_id"]) <= set(before["device_id"])
            kinds.append("remote")
        else:
            assert (sess["country"] != "VN").all()
            assert not set(sess["device_id"]) & set(before["device_id"])
            kinds.append("foreign")
        history = pay[(pay["account_id"] == acc) & (pay["direction"] == "debit")
                      & ~pay["is_fraud"] & (pay["ts"] < first)]
        assert not set(group["counterparty_account"]) & set(history["counterparty_account"])
        if len(history) >= 5:
            assert group["amount"].max() > 5 * history["amount"].median()
    assert "foreign" in kinds and "remote" in kinds


def test_shell_businesses_are_new_abroad_and_pass_money_through(frames):
    pay, logins, accounts = frames["pay"], frames["logins"], frames["accounts"]
    shells = accounts[accounts["role"] == "shell"]
    assert (shells["type"] == "business").all()
    assert ((shells["opened_at"] - shells["registered_at"]).dt.days <= 180).all()
    loud = pay[pay["typology"] == "shell_business"]
    for acc, group in loud.groupby("account_id"):
        credit = group.loc[group["direction"] == "credit", "amount"].sum()
        debit = group.loc[group["direction"] == "debit", "amount"].sum()
        assert 0.8 <= debit / credit <= 1.05
        assert group.loc[group["direction"] == "credit", "counterparty_account"].nunique() >= 6
        own = logins[logins["account_id"] == acc]
        assert (own["country"] != "VN").all()
        assert not (pay[pay["account_id"] == acc]["is_fraud"] == False).any()  # noqa: E712


def test_scam_victims_send_unusually_large_sums_to_new_beneficiaries(frames):
    pay, accounts = frames["pay"], frames["accounts"]
    scam = pay[(pay["typology"] == "scam_victim") & (pay["direction"] == "debit")]
    victims = accounts.set_index("account_id").loc[scam["account_id"].unique()]
    assert (victims["role"] == "victim").all()
    assert (victims["segment"] == "elderly").any()
    ratios = []
    for acc, group in scam.groupby("account_id"):
        history = pay[(pay["account_id"] == acc) & (pay["direction"] == "debit")
                      & ~pay["is_fraud"]]
        assert not set(group["counterparty_account"]) & set(
            history.loc[history["ts"] < group["ts"].min(), "counterparty_account"])
        ratios.append(group["amount"].max() / history["amount"].median())
    assert np.median(ratios) > 10


def test_reported_beneficiaries_keep_receiving_from_victims_and_are_reported_later(frames):
    """Many victims of this bank pay the same few accounts at other banks; labels name those
    payments (so their receiver is known) and SIMO lists most of those accounts days after the
    money first arrived — before later victims pay them."""
    pay, labels, watch = frames["pay"], frames["labels"], frames["watchlist"]
    rb = pay[pay["typology"].isin(["reported_beneficiary", "reported_beneficiary_quiet"])
             & (pay["direction"] == "debit")]
    assert not rb.empty and (rb["counterparty_bank"] != CFG.bank_code).all()
    victims_per_beneficiary = rb.groupby("counterparty_account")["account_id"].nunique()
    assert victims_per_beneficiary.max() >= 3
    labelled = labels[labels["event_id"].isin(rb["event_id"])]
    assert len(labelled) > len(rb) * 0.3 and (labelled["label"] == "fraud").all()
    first_paid = rb.groupby("counterparty_account")["ts"].min()
    listed = watch.set_index("account")["listed_at"]
    reported = first_paid.index.intersection(listed.index)
    assert len(reported) >= 1
    assert (listed[reported] > first_paid[reported]).all()
    later = rb[rb["counterparty_account"].isin(reported)]
    after = later["ts"].to_numpy() > listed.reindex(later["counterparty_account"]).to_numpy()
    assert after.any()  # some victims pay an account already on the list
    mules = frames["accounts"].query("role == 'mule'")["account_id"]
    assert watch["account"].isin(mules).any()  # this bank's own mules are reported too
    assert watch.set_index(["bank", "account"]).index.is_unique


def test_structuring_stays_just_under_the_biometric_thresholds(frames):
    pay = frames["pay"]
    st = pay[(pay["typology"] == "structuring") & (pay["direction"] == "debit")]
    assert not st.empty
    assert st["amount"].between(9e6, 10e6).all()
    day = (st["ts"] + pd.Timedelta(hours=7)).dt.floor("D")
    per_day = st.groupby([st["account_id"], day])["amount"].agg(["sum", "count"])
    assert (per_day["sum"] <= 20e6).all() and (per_day["count"] <= 2).all()
    assert (per_day["count"] == 2).any()
    quiet = pay[(pay["typology"] == "structuring_quiet") & (pay["direction"] == "debit")]
    assert (quiet["amount"] < 10e6).all()
    assert quiet.groupby([quiet["account_id"], (quiet["ts"] + pd.Timedelta(hours=7)).dt.floor(
        "D")]).size().max() == 1


def test_quiet_variants_are_quieter(frames):
    pay = frames["pay"]
    loud = pay[pay["typology"] == "account_takeover"]["amount"].median()
    quiet = pay[pay["typology"] == "account_takeover_quiet"]["amount"].median()
    assert quiet < loud
    q = pay[pay["typology"] == "mule_ring_quiet"]
    assert (q["country"].dropna() == "VN").all()
    loud = pay[pay["typology"] == "reported_beneficiary"]["amount"].median()
    quiet = pay[pay["typology"] == "reported_beneficiary_quiet"]["amount"].median()
    assert quiet < loud


def test_legitimate_hard_cases_exist(frames):
    pay, logins, accounts = frames["pay"], frames["logins"], frames["accounts"]
    legit = pay[~pay["is_fraud"]]
    merchants = set(accounts.query("segment == 'merchant' and role == 'normal'")["account_id"])
    credits = legit[(legit["direction"] == "credit") & legit["account_id"].isin(merchants)]
    day = credits["ts"].dt.tz_convert("Asia/Ho_Chi_Minh").dt.date
    fan_in = credits.groupby(["account_id", day])["counterparty_account"].nunique()
    assert fan_in.max() >= 15
    business = set(accounts.query("type == 'business' and role == 'normal'")["account_id"])
    foreign = logins[(logins["country"] != "VN") & logins["account_id"].isin(business)]
    assert foreign["account_id"].nunique() >= 5
    personal = set(accounts.query("type == 'personal' and role == 'normal'")["account_id"])
    travel = logins[(logins["country"] != "VN") & logins["account_id"].isin(personal)]
    assert travel["account_id"].nunique() >= 10
    large = legit[legit["description"].isin(["Dat coc mua nha", "Mua xe may"])]
    assert len(large) > 5 and large["amount"].median() > 1e7
    usd = legit[legit["currency"] == "USD"]
    assert len(usd) > 0


def test_legitimate_customers_pay_beneficiaries_new_to_the_bank_and_share_devices(frames):
    """The hard cases next to quiet scams and quiet rings: first payments to people no customer
    paid before, often larger than usual and sometimes repeated; families on one phone or one
    home IP."""
    pay, logins, accounts = frames["pay"], frames["logins"], frames["accounts"]
    legit = pay[~pay["is_fraud"]]
    payers = pay[pay["direction"] == "debit"].groupby(
        ["counterparty_bank", "counterparty_account"])["account_id"].nunique()
    debits = legit[(legit["direction"] == "debit") & (legit["counterparty_bank"] != "CGB")
                   & legit["channel"].isin(["mobile", "internet", "branch"])]
    key = list(zip(debits["counterparty_bank"], debits["counterparty_account"], strict=True))
    only_one = debits[[payers[k] == 1 for k in key]]
    per_payee = only_one.groupby("counterparty_account").size()
    assert only_one["account_id"].nunique() >= 500  # most personal customers in 30 days
    assert (per_payee >= 2).mean() > 0.1  # deposit, then the balance
    usual = legit[legit["direction"] == "debit"].groupby("account_id")["amount"].median()
    ratio = only_one["amount"].to_numpy() / usual[only_one["account_id"]].to_numpy()
    assert 0.05 < (ratio >= 3).mean() < 0.8
    personal = set(accounts.query("type == 'personal' and role == 'normal'")["account_id"])
    own = logins[logins["account_id"].isin(personal)]
    shared_dev = own.groupby("device_id")["account_id"].nunique()
    shared_ip = own.groupby("ip")["account_id"].nunique()
    assert (shared_dev >= 2).sum() >= 30 and (shared_ip >= 2).sum() >= 100


def test_some_quiet_rings_share_a_handler_phone():
    result = simulate(SimConfig(accounts=3000, days=60, seed=5, fraud_rate=0.01))
    quiet = result.payments.to_pandas().merge(result.truth.to_pandas(), on="event_id")
    quiet = quiet[(quiet["typology"] == "mule_ring_quiet") & quiet["device_id"].notna()]
    assert quiet["device_id"].map(quiet.groupby("device_id")["account_id"].nunique()).max() >= 2


def test_labels_arrive_later_cover_most_but_not_all_fraud_and_include_false_alarms(frames):
    pay, labels, accounts = frames["pay"], frames["labels"], frames["accounts"]
    events = pay.set_index("event_id")
    with_event = labels[labels["event_id"].notna()]
    assert with_event["event_id"].isin(events.index).all()
    happened = events.loc[with_event["event_id"], "ts"].reset_index(drop=True)
    delay = with_event["confirmed_at"].reset_index(drop=True) - happened
    assert (delay.dt.total_seconds() >= 3600).all()
    fraud_labels = with_event[with_event["label"] == "fraud"]
    assert events.loc[fraud_labels["event_id"], "is_fraud"].all()
    legit_labels = with_event[with_event["label"] == "legit"]
    assert len(legit_labels) > 0
    assert not events.loc[legit_labels["event_id"], "is_fraud"].any()
    fraud_ids = set(pay.loc[pay["is_fraud"], "event_id"])
    labelled = set(fraud_labels["event_id"])
    assert 0.2 < len(labelled) / len(fraud_ids) < 0.95
    account_level = labels[labels["event_id"].isna()]
    roles = accounts.set_index("account_id").loc[account_level["account_id"], "role"]
    assert set(account_level["label"]) <= {"mule", "fraud"}
    assert len(account_level) > 0
    assert set(roles[account_level["label"].to_numpy() == "mule"]) <= {"mule"}
    assert set(roles[account_level["label"].to_numpy() == "fraud"]) <= {"shell"}
    assert set(labels["source"]) <= {"investigation", "chargeback", "police"}


def test_no_activity_before_an_account_is_opened(frames):
    opened = frames["accounts"].set_index("account_id")["opened_at"]
    for kind in ("pay", "logins"):
        df = frames[kind]
        assert (df["ts"] >= df["account_id"].map(opened)).all(), kind


# ------------------------------------------------------------------ the command


def test_canhgiac_simulate_writes_a_directory_and_prints_a_summary(tmp_path, capsys,
                                                                    monkeypatch):
    from canhgiac.cli import main

    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path / "state"))
    out = tmp_path / "sim"
    args = ["simulate", "--accounts", "200", "--days", "5", "--seed", "7", "--out", str(out),
            "--fraud-rate", "0.01", "--format", "jsonl", "--start", "2026-02-01"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for word in ("payments", "logins", "accounts", "fraud rate", "mule_ring",
                 "account_takeover", "shell_business", "scam_victim"):
        assert word in printed
    assert (out / "payments.jsonl").is_file() and (out / "accounts_truth.jsonl").is_file()


@pytest.mark.parametrize("bad", [
    ["--accounts", "0"], ["--fraud-rate", "2"], ["--days", "-1"], ["--start", "2026-02-30"],
    ["--format", "csv"], ["--accounts", "many"], [],
])
def test_canhgiac_simulate_bad_arguments_exit_2_with_one_line(tmp_path, capsys, bad):
    from canhgiac.cli import main

    args = ["simulate", *bad] + (["--out", str(tmp_path / "x")] if bad else [])
    try:
        code = main(args)
    except SystemExit as exc:  # argparse errors (bad type/choice)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err
    assert not (tmp_path / "x").exists()
