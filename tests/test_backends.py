"""The backend registry with real models: every backend that can run here runs, and agrees with eager.

Parametrized over the registry, so a new backend is tested without editing this file; a
backend that cannot run on this machine is skipped with its own reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from artifactkit import DATASET, PT2_VARIANT, copy_variants

from fnnkit.backends import (
    BACKENDS,
    DEVICES,
    FP32,
    TRT_MAX_BATCH,
    get_backend,
    ort_session,
    read_exported,
    resolve_backends,
    trt_cache_root,
)
from fnnkit.data import preprocess
from fnnkit.errors import ArtifactError, BackendUnavailable, ConfigError, IntegrityError
from fnnkit.export import FORMATS, export_variant, get_format
from fnnkit.export.parity import measure, reference
from fnnkit.store import load_trained

VARIANT = PT2_VARIANT  # the variant whose .pt2 the session compiles once (tests/conftest.py)
# every (backend, device) test; the CUDA ones carry the `cuda` mark, so `pytest -m cuda` selects them on a GPU
ON_DEVICES = [pytest.param(d, marks=pytest.mark.cuda) if d == "cuda" else d for d in DEVICES]


@pytest.fixture(scope="module")
def folder(exported_root, tmp_path_factory) -> Path:
    """A private copy of the shared export of ``VARIANT`` (every CPU format), plus the CUDA files on a GPU."""
    target = copy_variants(exported_root, tmp_path_factory.mktemp("backends"), VARIANT) / DATASET / VARIANT
    for device in (d for d in DEVICES if d != "cpu"):  # model.cuda.pt2, fp16 ONNX: where a GPU can check them
        formats = {b.export_format for b in BACKENDS.values() if b.available(device)[0]} - {None}
        if formats:
            export_variant(target, [get_format(f) for f in sorted(formats)], device=device)
    return target


@pytest.fixture(scope="module")
def test_set(folder, sample_data):
    inputs = preprocess(sample_data.test_x)
    model, _ = load_trained(folder)
    return inputs.numpy(), sample_data.test_y.numpy(), reference(model, inputs)


def test_every_backend_has_a_test_path():
    """Each backend declares devices this suite knows, and one that claims the CPU really runs on it here,
    so ``test_backend_matches_eager[...-cpu]`` runs it instead of skipping silently."""
    for name, backend in BACKENDS.items():
        assert backend.devices and set(backend.devices) <= set(DEVICES), name
        assert backend.summary and backend.precision, name
        if "cpu" in backend.devices and not backend.hardware_gated:  # gated ones are tested in test_precision.py
            ok, reason = backend.available("cpu")
            assert ok, f"{name} claims the CPU but is unavailable here: {reason}"
        if backend.precision == "fp32":
            assert backend.tolerance == FP32, f"{name}: an fp32 backend is held to the fp32 tolerance"


@pytest.mark.parametrize("device", ON_DEVICES)
@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_matches_eager(name, device, folder, test_set):
    backend = BACKENDS[name]
    ok, reason = backend.available(device)
    if not ok:
        pytest.skip(reason)
    inputs, labels, eager = test_set
    predictor = backend.load(folder, device, threads=1)
    predictor.warmup(64, rounds=2)
    parity = measure(predictor, inputs, labels, eager, backend.tolerance)  # bound(n).run(): the timed call
    assert parity.passed, parity
    if backend.precision == "fp32":
        assert parity.max_abs_diff <= 1e-4
        assert parity.accuracy == parity.eager_accuracy


@pytest.mark.parametrize("device", ON_DEVICES)
@pytest.mark.parametrize("name", list(BACKENDS))
def test_prepared_input_is_reused_and_outputs_are_not_aliased(name, device, folder, test_set):
    ok, reason = BACKENDS[name].available(device)
    if not ok:
        pytest.skip(reason)
    predictor = BACKENDS[name].load(folder, device, threads=1)
    inputs = test_set[0]
    first = predictor.prepare(inputs[:8])
    a = predictor.to_host(predictor(first))
    b = predictor.to_host(predictor(predictor.prepare(inputs[8:16])))  # must not overwrite the first result
    assert np.array_equal(a, predictor.to_host(predictor(first)))
    assert not np.array_equal(a, b)
    assert a.shape == (8, 10) and a.dtype == np.float32 and isinstance(a, np.ndarray)


@pytest.mark.parametrize("device", ON_DEVICES)
@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_bound_batch_reads_its_host_rows_every_run(name, device, folder, test_set):
    """``Predictor.bound``: rows written into ``host`` in place are what the next run sees, and its classes
    are the same as ``predict``'s (the load scenarios' path, with no binding or copy per batch)."""
    ok, reason = BACKENDS[name].available(device)
    if not ok:
        pytest.skip(reason)
    predictor = BACKENDS[name].load(folder, device, threads=1)
    inputs = test_set[0]
    bound = predictor.bound(16)
    for rows in (inputs[:16], inputs[16:32]):
        bound.host[:] = rows  # in place, as the scenario batcher's numpy take(out=...) does
        classes = bound.classes(bound.run())
        expected = predictor.predict(rows).argmax(axis=1)
        assert classes.dtype.str == "<i4" and classes.shape == (16,)
        assert (classes == expected).mean() >= 0.9  # reduced precisions may flip a near tie
        if BACKENDS[name].precision == "fp32":
            assert (classes == expected).all()


def test_compile_refuses_to_compile_inside_the_timed_region(folder):
    predictor = get_backend("compile").load(folder, "cpu", threads=1)
    predictor.warmup(8, rounds=1)
    compiled = predictor.compilations
    with predictor.steady():
        predictor(predictor.prepare(np.random.rand(16, 784).astype(np.float32)))  # dynamic batch: no new graph
    assert predictor.compilations == compiled
    with pytest.raises(Exception, match="(?i)recompil"), predictor.steady():
        predictor(predictor.prepare(np.random.rand(2, 1, 784).astype(np.float32)))  # 3-d: a new graph, never seen here


def test_compile_builds_frozen_graphs_at_load(folder, test_set, monkeypatch):
    """Freezing folds the weight matrices into the graphs (prepacked, on the CPU): once loaded, zeroing the
    module's weights changes nothing (an unfrozen graph reads them on every call and would return the bias
    chain), and no batch size compiles again (both graphs, batch 1 and the dynamic one, were built at load)."""
    import fnnkit.backends.torch as torch_backends

    modules = []
    real = torch_backends._eager_model
    monkeypatch.setattr(torch_backends, "_eager_model", lambda *a: modules.append(real(*a)) or modules[-1])
    predictor = get_backend("compile").load(folder, "cpu", threads=1)
    built = predictor.compilations
    inputs, _, eager = test_set
    with torch.no_grad():
        for name, parameter in modules[0].named_parameters():
            if name.endswith("weight"):
                parameter.zero_()
    with predictor.steady():
        for batch in (1, 7, 1000):
            assert np.abs(predictor.to_host(predictor(predictor.prepare(inputs[:batch]))) - eager[:batch]).max() <= 1e-4
    assert predictor.compilations == built


def test_cudagraphs_backend_is_cuda_only_and_says_why():
    backend = get_backend("compile-cudagraphs")
    assert backend.devices == ("cuda",) and backend.precision == "fp32"
    ok, reason = backend.available("cpu")
    assert not ok and 'mode="reduce-overhead"' in reason and "CUDA only" in reason


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_cudagraphs_replay_without_recompiling(folder, test_set):
    """Each batch size is recorded once; replays in the timed region neither recompile nor re-record wrongly."""
    predictor = get_backend("compile-cudagraphs").load(folder, "cuda", threads=1)
    inputs, _, eager = test_set
    for batch in (1, 64, 1000):
        predictor.warmup(batch, rounds=3)
    compiled = predictor.compilations
    prepared = {batch: predictor.prepare(inputs[:batch]) for batch in (1, 64, 1000)}
    with predictor.steady():
        for _ in range(3):
            for x in prepared.values():
                predictor(x)
    assert predictor.compilations == compiled
    for batch, x in prepared.items():
        assert np.abs(predictor.to_host(predictor(x)) - eager[:batch]).max() <= 1e-4


def test_tensorrt_engines_are_cached_per_model_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FNNKIT_TRT_CACHE", str(tmp_path / "trt"))
    assert trt_cache_root() == tmp_path / "trt"
    options = get_backend("onnxruntime-trt").provider_options["TensorrtExecutionProvider"]
    assert options["trt_engine_cache_enable"] == "True"
    assert options["trt_profile_max_shapes"] == f"input:{TRT_MAX_BATCH}x784" and TRT_MAX_BATCH >= 65_536


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the CUDA provider may start; nothing to refuse")
def test_onnxruntime_silent_cpu_fallback_is_refused(folder):
    data, path = read_exported(folder, "onnx", "cpu")
    with pytest.raises(BackendUnavailable, match="fell back to CPUExecutionProvider"):
        ort_session(data, path, ("CUDAExecutionProvider", "CPUExecutionProvider"), {}, threads=1)


def test_onnxruntime_run_error_is_one_line_naming_the_file(folder):
    """An error ONNX Runtime raises while running (here: 10 features where the graph takes 784) names the file."""
    predictor = get_backend("onnxruntime").load(folder, "cpu", threads=1)
    with pytest.raises(ArtifactError, match=r"onnxruntime failed running .*model\.onnx") as info:
        predictor(predictor.prepare(np.random.rand(2, 10).astype(np.float32)))
    assert "\n" not in str(info.value)
    assert predictor.predict(np.random.rand(3, 784).astype(np.float32)).shape == (3, 10)  # the IOBinding path runs


def test_cuda_backends_on_this_machine_say_why(folder):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for backend in BACKENDS.values():
        ok, reason = backend.available("cuda")
        assert not ok and reason
        with pytest.raises(BackendUnavailable, match=backend.name):
            backend.load(folder, "cuda", threads=1)


def test_tampered_file_is_refused(folder, tmp_path):
    copy = tmp_path / DATASET / VARIANT
    shutil.copytree(folder, copy)
    onnx_file = copy / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        get_backend("onnxruntime").load(copy, "cpu", threads=1)
    (copy / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(IntegrityError, match="sha256"):
        get_backend("eager").load(copy, "cpu", threads=1)


def test_missing_export_names_the_command(trained_root, tmp_path):
    copy = tmp_path / DATASET / VARIANT
    shutil.copytree(trained_root / DATASET / VARIANT, copy)
    assert get_backend("eager").missing(copy, "cpu") is None
    need = get_backend("onnxruntime-int8").missing(copy, "cpu")
    assert need and f"fnnkit export --format onnx-int8 --variant {VARIANT}" in need
    with pytest.raises(ArtifactError, match="fnnkit export --format onnx "):
        get_backend("onnxruntime").load(copy, "cpu", threads=1)
    assert "fnnkit train --variant B" in get_backend("eager").missing(tmp_path / DATASET / "B", "cpu")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown backend 'tensorflow'.*onnxruntime"):
        get_backend("tensorflow")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        get_backend("eager").available("tpu")
    assert [b.name for b in resolve_backends("onnxruntime,eager")] == ["eager", "onnxruntime"]
    assert len(resolve_backends(["all"])) == len([b for b in BACKENDS.values() if b.in_all]) < len(BACKENDS)


def test_every_format_names_the_backend_that_runs_it():
    """Export parity opens a file with ``FileFormat.backend``: that backend must run exactly that format,
    so the check proves the path bench times; and tolerances live on backends only."""
    for name, fmt in FORMATS.items():
        assert get_backend(fmt.backend).export_format == name, name
        assert not hasattr(fmt, "tolerance") and not hasattr(fmt, "open"), name
    assert {b.export_format for b in BACKENDS.values()} - {None} == set(FORMATS)
