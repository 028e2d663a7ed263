"""A tune's record, table, summary and PNG, from a search over a known surface (no LoadGen)."""

from __future__ import annotations

import json

from tunekit import OPTIMUM, KnownJudge, gate, space

from fnnkit.cli.plots import write_tune_plot
from fnnkit.cli.render import console
from fnnkit.cli.tune_cmds import frontier_table, summary_lines
from fnnkit.tune.run import SCHEMA, TuneConfig, record
from fnnkit.tune.search import tune

CARD = {"variant": {"name": "C"}, "dataset": {"name": "mnist"}}
ACCURACY = {"slow": 97.0, "mid": 96.5, "fast": 96.0, "inaccurate": 90.1}


def made(budget: float = 1500) -> dict:
    result = tune(space(), KnownJudge(), budget, gate=gate)
    return json.loads(json.dumps(record(TuneConfig(latency_bound_ms=1.0), CARD, result, ACCURACY, 12.0, 0.1)))


def test_the_record_holds_the_pick_the_machine_and_every_measurement():
    r = made()
    assert r["schema"] == SCHEMA and r["variant"] == "C" and r["dataset"] == "mnist"
    assert r["pick"]["deployment"] == {
        "backend": OPTIMUM.backend, "max_batch": OPTIMUM.max_batch,
        "max_queue_delay_us": OPTIMUM.max_queue_delay_us, "workers": OPTIMUM.workers,
    }  # fmt: skip
    assert r["machine"]["cores"] >= 1 and r["machine"]["flags"] and r["environment"]
    assert r["space"]["covered"] == len({json.dumps(t["deployment"]) for t in r["trials"] + r["votes"]})
    assert r["dropped"] == {"inaccurate": "accuracy 90.1% < floor 95.5%"}
    assert len(r["trials"]) + len(r["votes"]) > 10


def test_the_table_and_summary_name_the_pick_and_its_margin():
    r = made()
    with console.capture() as captured:
        console.print(frontier_table(r))
    text = captured.get()
    assert "pick" in text and "fast" in text and "batch 16, wait 50 µs, 2 worker(s)" in text
    lines = "\n".join(summary_lines(r))
    assert "pick: fast" in lines and "runner-up: mid" in lines and "+42.9%" in lines
    assert "not timed: inaccurate" in lines and "of 400 deployments" in lines


def test_a_spent_budget_and_no_pick_are_said(tmp_path):
    lines = "\n".join(summary_lines(made(budget=60)))
    assert "budget spent" in lines
    assert "not reached within the budget" not in "\n".join(summary_lines(made()))
    lines = "\n".join(summary_lines(made(budget=15)))  # one short search: the other backends were never timed
    assert "not reached within the budget: " in lines and "fast" in lines.split("not reached within the budget: ")[1]
    r = made()
    r["pick"], r["runner_up"], r["frontier"] = None, None, []
    assert "no deployment confirmed a peak with p99 <= 1 ms" in "\n".join(summary_lines(r))
    assert write_tune_plot(r, tmp_path / "none.png").stat().st_size > 1000  # an empty frontier still draws


def test_the_plot_is_a_png(tmp_path):
    path = write_tune_plot(made(), tmp_path / "tune.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_triton_gets_the_pick_and_never_a_deployment_whose_full_search_failed():
    from fnnkit.tune.deploy import triton_choice

    def trial(backend: str, peak: float | None, fidelity: str) -> dict:
        deployment = {"backend": backend, "max_batch": 64, "max_queue_delay_us": 0, "workers": 1}
        return {"deployment": deployment, "peak_qps": peak, "p99_ms": 1.0, "seconds": 1.0, "fidelity": fidelity}

    ort_short, ort_failed = trial("onnxruntime", 300_000.0, "short"), trial("onnxruntime", None, "full")
    int8 = trial("onnxruntime-int8-static", 270_000.0, "short")
    record = {"pick": int8, "trials": [int8, ort_short, ort_failed]}
    assert triton_choice(record) == int8  # the pick, though a short figure of another backend is higher
    record["pick"] = trial("openvino", 400_000.0, "full")
    assert triton_choice(record) == int8  # not Triton's: the best servable one, never the failed onnxruntime
