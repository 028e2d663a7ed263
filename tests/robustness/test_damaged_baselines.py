"""Damaged baselines: a benchmark baseline from another schema version, or edited by hand, is a clear
error through ``fnnkit bench --compare``, before any measuring starts.

tests/test_bench.py covers ``load_run`` on a missing row field, bad JSON and another schema;
here each defect goes through the CLI, and so do wrong-typed values, which used to load and
then crash the comparison after the whole run had been measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from benchrows import row as make_row
from clitools import fnnkit_in_process

from fnnkit.bench import SCHEMA, BenchRun, Ceiling, load_run, save_run
from fnnkit.bench.results import run_from_dict


def valid_run() -> dict:
    row = make_row(variant="C")
    ceiling = Ceiling(device="cpu", threads=1, size=1024, gflops=50.0, median_gflops=48.0, samples=5)
    run = BenchRun(run_id="r", created="2026-01-01T00:00:00+0000", config={}, environment={"cpu": "x"},
                   threads={"policy": "auto"}, isolation="in-process", ceilings=[ceiling], rows=[row])  # fmt: skip
    return asdict(run)


def other_schema(run: dict) -> None:
    run["schema"] = "fnnkit.bench/2"


def no_schema(run: dict) -> None:
    del run["schema"]


def row_field_missing(run: dict) -> None:
    del run["rows"][0]["p50_us"]


def top_field_missing(run: dict) -> None:
    del run["environment"]


def latency_as_text(run: dict) -> None:
    run["rows"][0]["p50_us"] = "10 µs"


def environment_as_text(run: dict) -> None:
    run["environment"] = "my laptop"


def flag_as_number(run: dict) -> None:
    run["rows"][0]["stable"] = 1


def rows_not_a_list(run: dict) -> None:
    run["rows"] = {"0": run["rows"][0]}


DEFECTS = {  # edit -> words the one-line error must contain
    other_schema: "schema 'fnnkit.bench/2'; this fnnkit reads 'fnnkit.bench/1'",
    no_schema: "schema None",
    row_field_missing: "row 0 lacks field(s) p50_us",
    top_field_missing: "lacks field(s) environment",
    latency_as_text: "row 0 field 'p50_us' is '10 µs', expected float",
    environment_as_text: "field 'environment' is 'my laptop', expected dict",
    flag_as_number: "field 'stable' is 1, expected bool",
    rows_not_a_list: "field 'rows' must be a list",
}


@pytest.mark.parametrize("defect", list(DEFECTS), ids=lambda d: d.__name__)
def test_bad_baseline_is_one_clear_line_before_measuring(defect, tmp_path, capsys, monkeypatch):
    run = valid_run()
    defect(run)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(run))
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", "--compare", str(baseline), "--device", "cpu",
                            "--artifacts", str(tmp_path / "empty"))  # fmt: skip
    assert code == 2 and "Traceback" not in text, text
    assert str(baseline) in text and DEFECTS[defect] in text, text
    assert "missing artifacts" not in text  # refused before looking for anything to measure


def test_a_valid_baseline_passes_the_same_gate(tmp_path, capsys, monkeypatch):
    """The control: an untouched baseline is accepted; the run then stops at the (empty) artifacts."""

    baseline = save_run(run_from_dict(valid_run(), tmp_path / "in-memory"), tmp_path / "baseline.json")
    assert load_run(baseline).schema == SCHEMA
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", "--compare", str(baseline), "--device", "cpu",
                            "--artifacts", str(tmp_path / "empty"))  # fmt: skip
    assert code == 2 and "missing artifacts" in text and str(baseline) not in text, text
