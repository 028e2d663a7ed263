"""`fnnkit tune --compare`: an earlier tune record is hostile input refused in one line; two real records
(searches over the known surface) compare per backend and for the pick, and say when they cannot."""

from __future__ import annotations

import json
import os

import pytest
from clitools import assert_user_error
from tunekit import KnownJudge, tune_record

from fnnkit.bench.results import SCHEMA as BENCH_SCHEMA
from fnnkit.cli.render import console
from fnnkit.cli.tune_cmds import comparison_lines, comparison_table
from fnnkit.errors import ArtifactError
from fnnkit.store.io import MAX_JSON_DEPTH, MAX_RECORD_BYTES
from fnnkit.tune.compare import compare_tunes
from fnnkit.tune.record import SCHEMA, TuneRecord, read_tune

GOOD = tune_record()


def _set(path: str, value):
    """A copy of GOOD with the dotted ``path`` (list items by index) set to ``value``."""
    record = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    here = record
    for part in parents:
        here = here[int(part)] if isinstance(here, list) else here[part]
    if isinstance(here, list):
        here[int(last)] = value
    else:
        here[last] = value
    return json.dumps(record)


def _nested(depth: int) -> str:
    return _set("environment", json.loads("[" * depth + "]" * depth))


HOSTILE = {
    "not JSON": ("{'schema': 'fnnkit.tune/1'", "is not valid JSON"),
    "a JSON list": ("[1, 2]", "must hold a JSON object"),
    "NaN": (_set("margin", 0.5).replace('"margin": 0.5', '"margin": NaN'), "NaN is not a number"),
    "infinity by overflow": (_set("spent_s", 1.5).replace('"spent_s": 1.5', '"spent_s": 1e999'), "not a finite"),
    "oversized": (_set("dropped.x", " " * MAX_RECORD_BYTES), "bytes"),
    "nested deep": (_nested(MAX_JSON_DEPTH + 2), "nests deeper"),
    "a bench record": (json.dumps({"header": {"schema": BENCH_SCHEMA, "kind": "latency"}, "rows": []}), BENCH_SCHEMA),
    "a stale schema version": (_set("schema", "fnnkit.tune/0"), "has schema 'fnnkit.tune/0'"),
    "a huge schema string": (_set("schema", "x" * 100_000), "this fnnkit reads"),
    "another kind": (_set("kind", "load"), "kind"),
    "an unknown field": (_set("extra", 1), "extra"),
    "a missing field": (json.dumps({k: v for k, v in GOOD.items() if k != "trials"}), "trials"),
    "no cores": (_set("machine.cores", 0), "machine.cores"),
    "a bool for a count": (_set("machine.cores", True), "machine.cores"),
    "busy cores below zero": (_set("machine.others_cores_max", -1), "others_cores_max"),
    "a negative peak": (_set("trials.0.peak_qps", -5.0), "trials.0.peak_qps"),
    "a peak past any machine": (_set("trials.0.peak_qps", 1e12), "trials.0.peak_qps"),
    "a string for a peak": (_set("trials.0.peak_qps", "9e9"), "trials.0.peak_qps"),
    "max batch 0": (_set("pick.deployment.max_batch", 0), "pick.deployment.max_batch"),
    "another fidelity": (_set("pick.fidelity", "guessed"), "pick.fidelity"),
    "accuracy over 100%": (_set("accuracy.fast", 101.0), "accuracy.fast"),
    "a bound of 0 ms": (_set("config.latency_bound_ms", 0), "config.latency_bound_ms"),
    "an unknown device": (_set("config.device", "tpu"), "config"),
    "an endless reason": (_set("dropped.inaccurate", "x" * 5000), "dropped.inaccurate"),
    "an endless backend name": (_set("trials.1.deployment.backend", "b" * 500), "trials.1.deployment.backend"),
}


@pytest.mark.parametrize("text, said", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_record_is_one_line_naming_the_file(tmp_path, text, said):
    path = tmp_path / "earlier.json"
    path.write_text(text)
    with pytest.raises(ArtifactError) as caught:
        read_tune(path)
    message = str(caught.value)
    assert said in message and str(path) in message and "\n" not in message and len(message) < 600, message


@pytest.mark.parametrize("kind", ["missing", "a folder", "a FIFO", "a symlink to /dev/zero"])
def test_what_is_not_a_regular_file_is_refused_unread(tmp_path, kind):
    path = tmp_path / "earlier.json"
    if kind == "a folder":
        path.mkdir()
    elif kind == "a FIFO":
        os.mkfifo(path)
    elif kind != "missing":
        path.symlink_to("/dev/zero")
    with pytest.raises(ArtifactError, match="earlier.json"):
        read_tune(path)


def test_a_good_record_reads_back_equal():
    assert TuneRecord.model_validate(GOOD).model_dump(mode="json") == GOOD
    assert GOOD["schema"] == SCHEMA


def test_a_bad_compare_fails_before_anything_is_measured(served_root, tmp_path, cli):
    bad = tmp_path / "earlier.json"
    bad.write_text(_set("schema", "fnnkit.tune/0"))
    code, text = cli("tune", "--compare", str(bad), "--json", str(tmp_path / "t.json"), "--artifacts", str(served_root))
    assert_user_error((code, text), str(bad), "fnnkit.tune/0")
    assert code == 2
    assert "tuning" not in text and not (tmp_path / "t.json").exists()


def _compared(now: dict, earlier: dict):
    result = compare_tunes(TuneRecord.model_validate(now), TuneRecord.model_validate(earlier))
    with console.capture() as captured:
        console.print(comparison_table(result, "earlier.json", earlier["run_id"]))
        for line in comparison_lines(result):
            console.print(line, highlight=False)
    return result, captured.get()


def test_a_faster_backend_shows_its_change_and_the_pick_stays():
    now = tune_record(KnownJudge(scale={"fast": 1.1}))
    result, text = _compared(now, GOOD)
    change = {c.label: c.change_pct for c in result.changes}
    assert change["pick"] == pytest.approx(10.0) and change["fast"] == pytest.approx(10.0)
    assert change["mid"] == pytest.approx(0.0)
    assert "slow" not in change  # outvoted in both runs: one failed vote, no peak to compare
    assert [c.label for c in result.changes][:2] == ["pick", "fast"]
    assert not result.pick_changed and result.incomparable == [] and result.notes == []
    assert "+10.0%" in text and "the pick is the same deployment" in text and "not comparable" not in text
    assert "130,000" in text and "143,000" in text and "fast b16 50µs 2w (full)" in text


def test_a_changed_pick_is_said_with_both_deployments():
    earlier = tune_record(KnownJudge(scale={"mid": 2.0}))  # mid was the fastest then
    result, text = _compared(GOOD, earlier)
    assert result.pick_changed
    assert "the pick changed: earlier mid b16 50µs 2w (full), now fast b16 50µs 2w (full)" in text
    pick = result.changes[0]
    assert pick.change_pct == pytest.approx(100 * (100 / 140 - 1))


def test_no_pick_in_either_run_is_said():
    nothing = json.loads(_set("pick", None))
    result, text = _compared(nothing, nothing)
    assert "neither tune found a deployment" in text and result.changes[0].change_pct is None


INCOMPARABLE = {
    "another variant": ({"variant": "E"}, "another model: earlier mnist/E, now mnist/C"),
    "another dataset": ({"dataset": "fashion-mnist"}, "another model"),
    "another bound": ({"config": {**GOOD["config"], "latency_bound_ms": 5.0}}, "p99 <= 5 ms, now 1 ms"),
    "another device": ({"config": {**GOOD["config"], "device": "cuda"}}, "another device"),
    "another CPU": ({"environment": {**GOOD["environment"], "cpu": "Some Other CPU"}}, "'Some Other CPU'"),
    "more cores": ({"machine": {**GOOD["machine"], "cores": GOOD["machine"]["cores"] + 2}}, "core count"),
    "fewer instruction sets": (
        {"machine": {**GOOD["machine"], "flags": [*GOOD["machine"]["flags"], "avx512_fp16x"]}},
        "only earlier: avx512_fp16x",
    ),
    "a busy machine then": (
        {"machine": {**GOOD["machine"], "others_cores_max": 1.25}},
        "up to 1.2 cores busy during the earlier run",
    ),
}


@pytest.mark.parametrize("changed, said", INCOMPARABLE.values(), ids=INCOMPARABLE.keys())
def test_what_makes_two_tunes_incomparable_is_said_plainly(changed, said):
    result, text = _compared(GOOD, {**GOOD, **changed})
    assert len(result.incomparable) == 1 and said in result.incomparable[0], result.incomparable
    assert "not comparable:" in text


def test_a_busy_machine_now_and_other_settings_are_said():
    now = tune_record(load=2.0)
    earlier = {**GOOD, "config": {**GOOD["config"], "budget_s": 120.0, "min_accuracy": 95.5}}
    result, text = _compared(now, earlier)
    assert result.incomparable == ["other processes kept up to 2.0 cores busy during this run"]
    assert any("--budget-s differs" in n for n in result.notes) and any("--min-accuracy" in n for n in result.notes)


def test_a_measured_record_reads_back_and_compares():
    """The record of a real LoadGen tune (E, p99 <= 5 ms) passes the schema it was written under."""
    from pathlib import Path

    measured = read_tune(Path(__file__).resolve().parents[1] / "docs/results/2026-12-05-cpu/tune-E-5ms-halving.json")
    result, text = _compared(measured.model_dump(mode="json"), measured.model_dump(mode="json"))
    assert not result.pick_changed and all(c.change_pct == 0 for c in result.changes)
    assert measured.pick.deployment.backend in text and result.incomparable == []
    result, _ = _compared(GOOD, measured.model_dump(mode="json"))
    assert any("another model: earlier mnist/E" in r for r in result.incomparable)
    assert any("p99 <= 5 ms, now 1 ms" in r for r in result.incomparable)


def test_a_short_pick_against_a_full_one_claims_no_change():
    """A budget that ended before the full-length search leaves a short pick: set beside a full one, it is a
    different run length, not a change."""
    now = tune_record(budget=20)  # one short search, no full one
    assert now["pick"]["fidelity"] == "short" and GOOD["pick"]["fidelity"] == "full"
    result, text = _compared(now, GOOD)
    pick = next(c for c in result.changes if c.label == "pick")
    assert pick.change_pct is None
    assert any("different length (earlier full, now short)" in note for note in result.notes)
