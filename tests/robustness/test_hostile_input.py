"""Hostile input, by class (issue 9): each test tries several members of one class.

Classes: child processes isolated (1), files that belong together switch as one unit (2), only
bounded regular files are read or replaced (3), interrupts are never swallowed (4), ONNX graphs
vetted as the expected MLP (5), records schema-checked before use (6), numeric options bounded (8),
loaders and verify apply one rule (9), and the small ones (10).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clitools import fnnkit_in_process

from fnnkit.bench.results import BenchRun, load_run, save_run
from fnnkit.errors import ArtifactError, ConfigError, FnnkitError, Interrupted
from fnnkit.export import core, read_exported
from fnnkit.spawn import python_module_argv, run_isolated
from fnnkit.store import (
    EXPORT_MANIFEST,
    MODEL_CARD,
    WEIGHTS_FILE,
    atomic_write_bytes,
    commit_files,
    folder_lock,
    load_trained,
    read_json,
    recover_swaps,
    save_trained,
    sweep_stale_temps,
)
from fnnkit.variants import resolve_variants
from fnnkit.verify import verify
from tests.robustness.helpers import REPO, child_env, rerecord_export, run_python

# --------------------------------------------------------------------------- 1. child processes


@pytest.mark.slow  # a real bench worker process: ~1.7 s
def test_worker_ignores_code_in_cwd_and_python_env(tmp_path):
    """A numpy.py / json.py in the cwd, a foreign fnnkit on PYTHONPATH, a PYTHONSTARTUP: none runs."""

    marker = tmp_path / "ran"
    evil = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    cwd, path_dir = tmp_path / "cwd", tmp_path / "pp"
    (path_dir / "fnnkit").mkdir(parents=True)
    cwd.mkdir()
    for name in ("json.py", "numpy.py", "traceback.py"):
        (cwd / name).write_text(evil)
    (path_dir / "fnnkit" / "__init__.py").write_text(evil)
    (tmp_path / "startup.py").write_text(evil)
    hostile = {"PYTHONPATH": str(path_dir), "PYTHONSTARTUP": str(tmp_path / "startup.py"), "PYTHONINSPECT": "1"}
    old = {k: os.environ.get(k) for k in hostile}
    os.environ.update(hostile)
    try:
        # the worker with no arguments imports fnnkit.bench.worker, then fails on its argv: enough to prove imports
        proc = run_isolated(python_module_argv("fnnkit.bench.worker"), timeout=120, cwd=str(cwd))
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert not marker.exists(), marker.read_text()
    assert "not enough values to unpack" in proc.stderr  # it really ran the installed worker


def test_child_dies_with_its_parent(tmp_path):
    """kill -9 of the parent takes the child with it (PR_SET_PDEATHSIG): no orphan keeps measuring."""
    pid_file = tmp_path / "child.pid"
    code = f"""
        import sys
        from fnnkit.spawn import python_argv, run_isolated
        child = "import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
        run_isolated(python_argv(child), timeout=300)
    """
    import textwrap

    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=child_env(), cwd=REPO)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child_pid), f"child {child_pid} outlived its parent"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie is dead, waiting for its reaper


# --------------------------------------------------------------------------- 2. one-unit commits


def _two_files(folder: Path, tag: str) -> None:
    commit_files(folder, {"a.bin": lambda p: p.write_text(tag), "b.json": lambda p: p.write_text(tag)})


@pytest.mark.parametrize("step", ["staged", "swapped", "aside"])
@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_kill_9_at_every_step_leaves_old_or_new(tmp_path, step, exchange):
    """A real kill -9 between the steps: the folder is always entirely old or entirely new."""
    if step == "aside" and exchange:
        pytest.skip("the 'aside' step exists only in the two-rename fallback")
    folder = tmp_path / "ds" / "C"
    folder.mkdir(parents=True)
    _two_files(folder, "old")
    (folder / "keep.onnx").write_text("unchanged")
    code = f"""
        import fnnkit.store as store
        import fnnkit.store.commit as commit
        from pathlib import Path
        if not {exchange}:
            commit._exchange = lambda a, b: False
        with store.folder_lock(Path({str(folder)!r})):
            store.commit_files(Path({str(folder)!r}), {{"a.bin": lambda p: p.write_text("new"),
                                                       "b.json": lambda p: p.write_text("new")}})
    """
    result = run_python(code, env=child_env(FNNKIT_CRASH_AT=step))
    assert result.returncode == -signal.SIGKILL, result.stderr
    recover_swaps(folder.parent)  # what the next commit runs first
    sweep_stale_temps(folder.parent)
    contents = {(folder / "a.bin").read_text(), (folder / "b.json").read_text()}
    assert contents in ({"old"}, {"new"}), contents
    assert (folder / "keep.onnx").read_text() == "unchanged"
    assert sorted(p.name for p in folder.parent.iterdir()) == [".C.lock", "C"]  # no stage left behind
    with folder_lock(folder):
        _two_files(folder, "next")  # and the folder still takes the next commit
    assert (folder / "a.bin").read_text() == (folder / "b.json").read_text() == "next"


def test_a_dead_two_rename_swap_is_repaired_whatever_came_first(tmp_path):
    """Killed between the renames, then a command created the folder empty (train does, to check it is
    writable), or killed after the second rename: the next commit restores the old files or drops the aside."""
    folder = tmp_path / "ds" / "C"
    folder.mkdir(parents=True)
    _two_files(folder, "old")
    (folder / "keep.onnx").write_text("unchanged")
    folder.rename(folder.with_name(f".C.old-{2**22 + 5}-ab12"))  # what the kill left: the folder aside
    folder.mkdir()  # a later command looked for it
    with folder_lock(folder):
        commit_files(folder, {"a.bin": lambda p: p.write_text("next")})
    assert (folder / "keep.onnx").read_text() == "unchanged" and (folder / "b.json").read_text() == "old"
    shutil.copytree(folder, folder.with_name(f".C.old-{2**22 + 6}-cd34"))  # killed after the second rename
    with folder_lock(folder):
        _two_files(folder, "last")
    assert sorted(p.name for p in folder.parent.iterdir()) == [".C.lock", "C"]


def test_failed_writer_changes_nothing(tmp_path):
    folder = tmp_path / "ds" / "C"
    folder.mkdir(parents=True)
    _two_files(folder, "old")

    def broken(path: Path) -> None:
        raise ArtifactError("parity failed")

    with pytest.raises(ArtifactError):
        commit_files(folder, {"a.bin": lambda p: p.write_text("new"), "b.json": broken})
    assert {(folder / n).read_text() for n in ("a.bin", "b.json")} == {"old"}
    assert sorted(p.name for p in folder.parent.iterdir()) == ["C"]


def test_non_finite_weights_leave_the_previous_model(trained_root, tmp_path):
    """A diverged training (NaN, +inf, -inf in any tensor) writes nothing; the old model still loads."""

    folder = tmp_path / "mnist-sample" / "C"
    shutil.copytree(trained_root / "mnist-sample" / "C", folder)
    model, card = load_trained(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for bad in (float("nan"), float("inf"), float("-inf")):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        next(iter(state.values()))[0, 0] = bad
        with pytest.raises(ArtifactError, match="NaN or infinity"):
            save_trained(folder, state, card)
    with pytest.raises(ArtifactError, match="NaN or infinity"):
        save_trained(folder, model.state_dict(), {**card, "test_accuracy": float("nan")})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    load_trained(folder)


# --------------------------------------------------------------------------- 3. special files


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "symlink", "folder", "huge"])
def test_records_and_weights_are_bounded_regular_files(trained_root, tmp_path, kind):
    """A FIFO, a symlink to /dev/zero, a folder or a 5 GB sparse file as model.json or the weights: one error."""
    for name in (MODEL_CARD, WEIGHTS_FILE):
        folder = tmp_path / name / "mnist-sample" / "C"
        shutil.copytree(trained_root / "mnist-sample" / "C", folder)
        target = folder / name
        target.unlink()
        if kind == "fifo":
            os.mkfifo(target)
        elif kind == "dev-zero":
            target.symlink_to("/dev/zero")
        elif kind == "symlink":
            shutil.copy(trained_root / "mnist-sample" / "C" / name, tmp_path / f"real-{name}")
            target.symlink_to(tmp_path / f"real-{name}")
        elif kind == "folder":
            target.mkdir()
        else:
            with open(target, "wb") as f:
                f.truncate(5 << 30)
        started = time.monotonic()
        with pytest.raises(ArtifactError):
            load_trained(folder)
        assert time.monotonic() - started < 5
        assert [c for c in verify(folder) if not c.ok and c.file == target]  # verify reports it too


@pytest.mark.parametrize("target", ["/dev/null", "fifo", "folder", "symlink"])
def test_writes_never_replace_special_files(tmp_path, target):
    path = Path(target) if target.startswith("/") else tmp_path / "out"
    if target == "fifo":
        os.mkfifo(path)
    elif target == "folder":
        path.mkdir()
    elif target == "symlink":
        (tmp_path / "real").write_text("keep")
        path.symlink_to(tmp_path / "real")
    with pytest.raises(ArtifactError, match="only replaces regular files"):
        atomic_write_bytes(path, b"png")
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize("flag", ["--json", "--csv", "--plot"])
def test_bench_output_paths_refused_before_work(capsys, monkeypatch, tmp_path, flag):
    os.mkfifo(tmp_path / "fifo")
    for bad in ("/dev/null", str(tmp_path / "fifo"), str(tmp_path)):
        code, text = fnnkit_in_process(capsys, monkeypatch, "bench", flag, bad, "--artifacts", str(tmp_path / "none"))
        assert code == 2 and "Traceback" not in text and flag in text and "regular files" in text, text


def test_json_into_read_only_folder_fails_before_measuring(capsys, monkeypatch, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: os.access cannot show the refusal")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", "--json", str(ro / "r.json"))
    assert code == 2 and "--json" in text and "not writable" in text, text


def test_train_plot_refused_at_the_boundary(capsys, monkeypatch, tmp_path):
    code, text = fnnkit_in_process(capsys, monkeypatch, "train", "--plot", "/dev/null", "--artifacts", str(tmp_path))
    assert code == 2 and "--plot /dev/null" in text and "Traceback" not in text, text
    assert Path("/dev/null").is_char_device()


# --------------------------------------------------------------------------- 4. interrupts


def test_interrupt_is_never_an_error_to_swallow():
    """The CLI's SIGINT/SIGTERM exception passes every `except Exception` / `except FnnkitError`."""
    assert issubclass(Interrupted, KeyboardInterrupt)
    for handler in (Exception, FnnkitError, ArtifactError):
        with pytest.raises(Interrupted):
            try:
                raise Interrupted("stop")
            except handler:  # what a broad wrapper in export or a library does
                pytest.fail(f"except {handler.__name__} caught the interrupt")


def test_export_stops_on_interrupt_with_130(trained_root, tmp_path, capsys, monkeypatch):
    """An interrupt inside one variant's export ends the command (exit 130); the next variant is not exported."""

    root = tmp_path / "artifacts"
    for name in ("C", "D"):
        shutil.copytree(trained_root / "mnist-sample" / name, root / "mnist-sample" / name)
    calls = []

    def interrupted_write(ctx, temp):
        calls.append(temp)
        raise Interrupted("interrupted by SIGINT")

    monkeypatch.setitem(core.WRITERS, "torchscript", interrupted_write)
    code, text = fnnkit_in_process(
        capsys, monkeypatch, "export", "--format", "torchscript", "--variant", "C,D",
        "--dataset", "mnist-sample", "--artifacts", str(root),
    )  # fmt: skip
    assert code == 130 and len(calls) == 1 and "Traceback" not in text, text
    assert not any(".stage-" in p.name for p in (root / "mnist-sample").iterdir())


# --------------------------------------------------------------------------- 5. ONNX graphs


def _tamper_onnx(variant: Path, change) -> Path:
    import onnx

    path = variant / "model.onnx"
    proto = onnx.load_model_from_string(path.read_bytes())
    change(proto, onnx.helper, onnx.TensorProto)
    path.write_bytes(proto.SerializeToString())
    rerecord_export(variant, "onnx")
    return path


def _reshape_contradicting_output(proto, helper, tp) -> None:
    out = proto.graph.output[0].name
    last = proto.graph.node[-1]
    last.output[0] = "pre"
    proto.graph.initializer.append(helper.make_tensor("shape", tp.INT64, [2], [-1, 5]))
    proto.graph.node.append(helper.make_node("Reshape", ["pre", "shape"], [out]))


def _constant_of_shape_bomb(proto, helper, tp) -> None:
    out = proto.graph.output[0].name
    last = proto.graph.node[-1]
    last.output[0] = "pre"
    proto.graph.initializer.append(helper.make_tensor("big", tp.INT64, [2], [100000, 100000]))
    proto.graph.node.append(helper.make_node("ConstantOfShape", ["big"], ["zeros"]))
    proto.graph.node.append(helper.make_node("Identity", ["pre"], [out]))


def _wider_initializer(proto, helper, tp) -> None:
    import numpy as np
    from onnx import numpy_helper

    first = proto.graph.initializer[0]
    array = numpy_helper.to_array(first)
    wide = np.zeros((array.shape[0] * 2, *array.shape[1:]), dtype=array.dtype)
    first.CopyFrom(numpy_helper.from_array(wide, first.name))


@pytest.mark.parametrize(
    "change", [_reshape_contradicting_output, _constant_of_shape_bomb, _wider_initializer], ids=lambda f: f.__name__
)
def test_onnx_graph_must_be_the_expected_mlp(variant, change):
    """Graphs whose sha256 was re-recorded, but are not the MLP: refused by the loader and by verify alike."""

    path = _tamper_onnx(variant, change)
    with pytest.raises(ArtifactError) as info:
        read_exported(variant, "onnx")
    problems = [c.problem for c in verify(variant) if not c.ok and c.file == path]
    assert problems and problems[0] == str(info.value)


# --------------------------------------------------------------------------- 6. records


CARD_ATTACKS = {
    "huge hidden_dim": lambda c: c["variant"].update(hidden_dim=10**12),
    "many layers": lambda c: c["variant"].update(hidden_layers=100000),
    "string layers": lambda c: c["variant"].update(hidden_layers="3"),
    "unknown variant": lambda c: c["variant"].update(name="Z"),
    "weights not a dict": lambda c: c.update(weights=[1]),
    "sha not hex": lambda c: c["weights"].update(sha256="x" * 64),
    "accuracy string": lambda c: c.update(test_accuracy="99"),
    "accuracy bool": lambda c: c.update(test_accuracy=True),
    "missing dataset": lambda c: c.pop("dataset"),
    "dataset path": lambda c: c["dataset"].update(name="../../etc"),
}


@pytest.mark.parametrize("attack", list(CARD_ATTACKS))
def test_card_schema_checked_before_anything_is_built(trained_root, tmp_path, attack):
    folder = tmp_path / "mnist-sample" / "C"
    shutil.copytree(trained_root / "mnist-sample" / "C", folder)
    card = json.loads((folder / MODEL_CARD).read_text())
    CARD_ATTACKS[attack](card)
    (folder / MODEL_CARD).write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="re-create it with: fnnkit train"):
        load_trained(folder)
    checks = verify(folder)
    assert len(checks) < 50 and [c for c in checks if not c.ok and c.file.name == MODEL_CARD]


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000, '{"a":' * 20 + "1" + "}" * 20, '{"x": NaN}'])
def test_json_depth_and_constants_bounded(tmp_path, text):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ArtifactError):
        read_json(path)


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update(bytes="12"),
        lambda e: e.pop("source_sha256"),
        lambda e: e.update(file="../../model.safetensors"),
        lambda e: e.update(parity=None),
        lambda e: e.update(device=["cpu"]),
    ],
)
def test_export_entry_schema(variant, change):
    manifest = json.loads((variant / EXPORT_MANIFEST).read_text())
    change(manifest["formats"]["onnx"])
    (variant / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="export manifest"):
        read_exported(variant, "onnx")


@pytest.mark.parametrize("field,value", [("latency.p50_us", None), ("latency.p50_us", -1), ("batch_size", 10**12),
                                         ("threads", "4"), ("latency.p99_us", 1e309)])  # fmt: skip
def test_bench_baseline_rows_checked_on_read(tmp_path, field, value):
    from fnnkit.bench import SCHEMA, RunHeader
    from tests.benchrows import row

    header = RunHeader(schema=SCHEMA, kind="latency", run_id="id", created="now", environment={}, config={})
    run = BenchRun(header=header, threads={"policy": "p"}, isolation="in-process", ceilings=[], rows=[row()])
    payload = json.loads(save_run(run, tmp_path / "good.json").read_text())
    *parents, name = field.split(".")
    target = payload["rows"][0]
    for parent in parents:
        target = target[parent]
    target[name] = value
    path = tmp_path / "base.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ArtifactError, match="benchmark file"):
        load_run(path)


# --------------------------------------------------------------------------- 8. numeric options


NUMERIC_ATTACKS = [
    ("bench", "--threads", "100000"),
    ("bench", "--threads", "0"),
    ("bench", "--min-time", "inf"),
    ("bench", "--min-time", "nan"),
    ("bench", "--accuracy-tolerance", "nan"),
    ("bench", "--accuracy-tolerance", "-1"),
    ("bench", "--fail-threshold", "inf"),
    ("bench", "--batch-sizes", "99999999999999999999"),
    ("train", "--lr", "inf"),
    ("train", "--lr", "0"),
    ("train", "--seed", str(2**64)),
    ("train", "--seed", "-1"),
    ("train", "--iters", "0"),
    ("train", "--batch-size", "99999999999"),
]


@pytest.mark.parametrize("command,flag,value", NUMERIC_ATTACKS)
def test_numeric_options_bounded_at_the_boundary(capsys, monkeypatch, tmp_path, command, flag, value):
    code, text = fnnkit_in_process(capsys, monkeypatch, command, flag, value, "--artifacts", str(tmp_path))
    assert code == 2 and "Traceback" not in text and flag in text, text
    assert "e+" not in text.replace("1e+300", ""), text  # integer limits in full: 1048576, not 1.04858e+06


# --------------------------------------------------------------------------- 9. one rule for loaders and verify


def test_stale_export_refused_by_loader_as_by_verify(variant):
    card = json.loads((variant / MODEL_CARD).read_text())
    manifest = json.loads((variant / EXPORT_MANIFEST).read_text())
    for entry in manifest["formats"].values():
        entry["source_sha256"] = "0" * 64  # as if the weights had been re-trained since
    (variant / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(ArtifactError, match="stale"):
            read_exported(variant, fmt)
    assert [c for c in verify(variant) if c.check == "current weights" and not c.ok]
    assert card["weights"]["sha256"] != "0" * 64


def test_symlinked_weights_refused_by_loader_as_by_verify(variant, tmp_path):
    real = tmp_path / "elsewhere.safetensors"
    shutil.move(variant / WEIGHTS_FILE, real)
    (variant / WEIGHTS_FILE).symlink_to(real)
    with pytest.raises(ArtifactError, match="symlink"):
        load_trained(variant)
    assert [c for c in verify(variant) if c.file.name == WEIGHTS_FILE and not c.ok]


# --------------------------------------------------------------------------- 10. small ones


def test_sweeper_survives_absurd_pids_and_temp_named_folders(tmp_path):
    names = [".model.json.tmp-99999999999999999999-ab12", ".model.json.tmp-0-ab12", ".x.tmp-4194304-ff"]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / ".model.onnx.tmp-1-abcd").mkdir()  # a folder named like a temp file is not ours
    sweep_stale_temps(tmp_path)
    assert (tmp_path / ".model.onnx.tmp-1-abcd").is_dir()
    assert (tmp_path / names[0]).exists()  # a pid no kernel hands out: not a writer's temp file, left alone
    assert not (tmp_path / names[1]).exists() and not (tmp_path / names[2]).exists()  # dead pids: swept


def test_variant_all_with_unknown_name_is_an_error():
    with pytest.raises(ConfigError, match="'F'"):
        resolve_variants("all,F")


def test_no_message_mentions_a_flag_that_does_not_exist():
    """Every `--flag` written in fnnkit's messages and hints is a flag some command declares."""
    import re

    sources = "\n".join(p.read_text() for p in (REPO / "fnnkit").rglob("*.py"))
    declared = set(re.findall(r'"(--[a-z][a-z0-9-]*)(?:/--[a-z-]+)?"', sources))
    declared |= {f"--{m}" for m in re.findall(r'"--[a-z-]+/--([a-z][a-z-]*)"', sources)}
    declared |= {
        "--help",
        "--query-gpu",
        "--model-repository",
        "--hash",
        "--head",
        "--porcelain",
    }  # click; nvidia-smi, tritonserver, pip, ray, git
    mentioned = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", sources))
    assert mentioned - declared == set()


# --------------------------------------------------------------------------- every command, every class


def _hostile_root(trained_root: Path, root: Path) -> list[str]:
    """One dataset folder per hostile variant C, so each command meets each case alone."""

    def card(folder: Path) -> dict:
        return json.loads((folder / MODEL_CARD).read_text())

    def huge(folder: Path) -> None:
        c = card(folder)
        c["variant"]["hidden_dim"] = 10**12
        (folder / MODEL_CARD).write_text(json.dumps(c))

    def relink(folder: Path, name: str, target: str) -> None:
        (folder / name).unlink()
        (folder / name).symlink_to(target)

    cases = {
        "fifo-card": lambda f: ((f / MODEL_CARD).unlink(), os.mkfifo(f / MODEL_CARD)),
        "zero-weights": lambda f: relink(f, WEIGHTS_FILE, "/dev/zero"),
        "zero-card": lambda f: relink(f, MODEL_CARD, "/dev/zero"),
        "huge-dim": huge,
        "deep-json": lambda f: (f / MODEL_CARD).write_text("[" * 50000 + "]" * 50000),
        "folder-weights": lambda f: ((f / WEIGHTS_FILE).unlink(), (f / WEIGHTS_FILE).mkdir()),
        "nan-card": lambda f: (f / MODEL_CARD).write_text((f / MODEL_CARD).read_text().replace("{", '{"x": NaN,', 1)),
        "garbage-manifest": lambda f: (f / EXPORT_MANIFEST).write_text('{"schema": "fnnkit.export/1", "formats": 7}'),
    }
    for name, damage in cases.items():
        folder = root / name / "C"
        shutil.copytree(trained_root / "mnist-sample" / "C", folder)
        damage(folder)
    return list(cases)


@pytest.mark.slow  # every command against every hostile folder: ~10 s
def test_every_command_meets_every_hostile_folder_with_one_line(trained_root, tmp_path, capsys, monkeypatch):
    root = tmp_path / "artifacts"
    for dataset in _hostile_root(trained_root, root):
        common = ("--variant", "C", "--dataset", dataset, "--artifacts", str(root))
        commands = [
            ("verify", str(root / dataset)),
            ("evaluate", *common),
            ("export", "--format", "onnx", *common),
            ("bench", "--in-process", "--backend", "eager", "--batch-sizes", "1", "--min-time", "0.01", *common),
        ]
        if dataset == "garbage-manifest":  # only what reads exports meets it (eager does not)
            commands[1:] = [(*argv[:3], "onnxruntime", *argv[4:]) for argv in commands[3:]]
            commands.insert(1, ("evaluate", "--backend", "onnxruntime", *common))
        for argv in commands:
            started = time.monotonic()
            code, text = fnnkit_in_process(capsys, monkeypatch, *argv)
            assert code != 0 and "Traceback" not in text, (dataset, argv, text)
            assert time.monotonic() - started < 30, (dataset, argv)
