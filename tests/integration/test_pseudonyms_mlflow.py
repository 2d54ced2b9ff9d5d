"""No raw account or customer id reaches MLflow or the log (Law 91/2025/QH15): train on a small
simulated bank with the real command against a real local MLflow store, then read every
artifact file (and inside every zip/npz) and the tracking database for every raw id."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from canhgiac.cli import main
from models.pseudonym import Pseudonymiser
from training.datadir import write_dir
from training.simulator import SimConfig, simulate

pytestmark = pytest.mark.slow
WINDOW_ARGS = ["--warmup-days", "3", "--valid-days", "7", "--gap-days", "3", "--test-days", "7"]


def _contents(path: Path) -> list[tuple[str, bytes]]:
    """The bytes of a file, or of each member of a zip archive (npz, pyfunc archives)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [(f"{path}!{name}", z.read(name)) for name in z.namelist()]
    return [(str(path), path.read_bytes())]


def _found(ids: set[str], data: bytes) -> list[str]:
    """The ids in ``data`` as UTF-8, or as numpy stores text (UTF-32) or UTF-16."""
    return [i for i in ids if any(i.encode(enc) in data
                                  for enc in ("utf-8", "utf-32-le", "utf-16-le"))]


def test_the_scan_sees_ids_inside_a_compressed_numpy_window(tmp_path):
    np.savez_compressed(tmp_path / "w.npz", account_ids=np.array(["389012345678"]),
                        X=np.zeros(3))
    found = [i for _, data in _contents(tmp_path / "w.npz")
             for i in _found({"389012345678", "111"}, data)]
    assert found == ["389012345678"]


def test_no_raw_id_in_mlflow_artifacts_or_logs(tmp_path, monkeypatch, capfd):
    bank = write_dir(simulate(SimConfig(accounts=300, days=24, seed=5, fraud_rate=0.01)),
                     tmp_path / "bank")
    accounts = pq.read_table(bank / "accounts.parquet").to_pydict()
    raw = {a for a in accounts["account_id"]} | {c for c in accounts["customer_id"]}
    assert len(raw) >= 600
    state = tmp_path / "state"
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(state))
    monkeypatch.delenv("CANHGIAC_PSEUDONYM_KEY", raising=False)
    assert main(["train", "--data", str(bank), "--seed", "3", "--anomaly", "never",
                 "--threads", "1", *WINDOW_ARGS]) == 0
    out, err = capfd.readouterr()

    files = [p for p in (state / "mlartifacts").rglob("*") if p.is_file()]
    files.append(state / "mlflow.db")
    assert any(p.name == "test_window.npz" for p in files)
    assert any(p.name == "model_card.md" for p in files)
    leaks = []
    for path in files:
        for name, data in _contents(path):
            leaks += [(name, i) for i in _found(raw, data)]
    assert not leaks, leaks[:5]
    assert not [i for i in raw if i in out or i in err]

    # the window holds the accounts' pseudonyms under the data dir's key (the scan above read
    # inside the npz: it would have seen the raw ids)
    p = Pseudonymiser.for_data_dir(state)
    window = next(p_ for p_ in files if p_.name == "test_window.npz")
    with np.load(window, allow_pickle=False) as z:
        ids = set(z["account_ids"].tolist())
    assert ids and ids <= {p(a) for a in accounts["account_id"]}
