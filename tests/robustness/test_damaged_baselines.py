"""Damaged baselines: a benchmark baseline from another schema version, or edited by hand, is a clear
error through ``fnnkit bench --compare``, before any measuring starts.

tests/test_bench.py covers ``load_run`` on a missing row field, bad JSON and another schema;
here each defect goes through the CLI, and so do wrong-typed values, which used to load and
then crash the comparison after the whole run had been measured.
"""

from __future__ import annotations

import json

import pytest
from benchrows import row as make_row
from clitools import fnnkit_in_process

from fnnkit.bench import SCHEMA, BenchRun, Ceiling, RunHeader, load_run, save_run


def valid_run() -> dict:
    row = make_row(variant="C")
    ceiling = Ceiling(device="cpu", threads=1, size=1024, gflops=50.0, median_gflops=48.0, samples=5)
    header = RunHeader(schema=SCHEMA, kind="latency", run_id="r", created="2026-01-01T00:00:00+0000",
                       environment={"cpu": "x"}, config={})  # fmt: skip
    run = BenchRun(header=header, threads={"policy": "auto"}, isolation="in-process", ceilings=[ceiling], rows=[row])
    return run.model_dump(mode="json")


def older_schema(run: dict) -> None:
    """A file of the flat-row format this fnnkit replaced: its schema is at the top level."""
    del run["header"]
    run["schema"] = "fnnkit.bench/1"


def no_schema(run: dict) -> None:
    del run["header"]["schema"]


def row_field_missing(run: dict) -> None:
    del run["rows"][0]["latency"]["p50_us"]


def top_field_missing(run: dict) -> None:
    del run["header"]["environment"]


def latency_as_text(run: dict) -> None:
    run["rows"][0]["latency"]["p50_us"] = "10 µs"


def environment_as_text(run: dict) -> None:
    run["header"]["environment"] = "my laptop"


def flag_as_number(run: dict) -> None:
    run["rows"][0]["trust"]["stable"] = 1


def rows_not_a_list(run: dict) -> None:
    run["rows"] = {"0": run["rows"][0]}


def unknown_field(run: dict) -> None:
    run["rows"][0]["latency"]["p50_ms"] = 1.0


def latency_not_positive(run: dict) -> None:
    run["rows"][0]["latency"]["p50_us"] = 0.0


DEFECTS = {  # edit -> words the one-line error must contain
    older_schema: "schema 'fnnkit.bench/1'; this fnnkit reads 'fnnkit.bench/2'",
    no_schema: "schema None",
    row_field_missing: "rows.0.latency.p50_us: Field required",
    top_field_missing: "header.environment: Field required",
    latency_as_text: "rows.0.latency.p50_us: Input should be a valid number",
    environment_as_text: "header.environment: Input should be a valid dictionary",
    flag_as_number: "rows.0.trust.stable: Input should be a valid boolean",
    rows_not_a_list: "rows: Input should be a valid list",
    unknown_field: "rows.0.latency.p50_ms: Extra inputs are not permitted",
    latency_not_positive: "rows.0.latency.p50_us: Input should be greater than 0",
}


@pytest.mark.parametrize("defect", list(DEFECTS), ids=lambda d: d.__name__)
def test_bad_baseline_is_one_clear_line_before_measuring(defect, tmp_path, capsys, monkeypatch):
    run = valid_run()
    defect(run)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(run))
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", "--compare", str(baseline), "--device", "cpu",
                            "--artifacts", str(tmp_path / "empty"))  # fmt: skip
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert str(baseline) in text and DEFECTS[defect] in text, text
    assert "nothing to run" not in text  # refused before looking for anything to measure


def test_a_valid_baseline_passes_the_same_gate(tmp_path, capsys, monkeypatch):
    """The control: an untouched baseline is accepted; the run then stops at the (empty) artifacts."""
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(valid_run()))
    assert load_run(baseline).header.schema_id == SCHEMA
    save_run(load_run(baseline), tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == valid_run()
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", "--compare", str(baseline), "--device", "cpu",
                            "--artifacts", str(tmp_path / "empty"))  # fmt: skip
    assert code == 2 and "nothing to run" in text and str(baseline) not in text, text
