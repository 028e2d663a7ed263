"""Precision and instruction set as hardware capabilities; static int8; per-precision ceilings; cold start."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from artifactkit import DATASET, copy_variants
from pydantic import ValidationError

from fnnkit import __version__
from fnnkit.backends import BACKENDS, get_backend
from fnnkit.bench.ceiling import ceiling_precisions, matmul_ceiling, repetition_rates, summarize
from fnnkit.bench.coldstart import measure_cold_starts
from fnnkit.bench.coldstart import summarize as summarize_cold
from fnnkit.bench.config import ColdStartConfig
from fnnkit.capabilities import CpuCapabilities, check_isa, cpu_capabilities, parse_cpuinfo_flags
from fnnkit.data import preprocess
from fnnkit.errors import ArtifactError, BackendUnavailable, ConfigError
from fnnkit.export.quantized import CALIBRATION_IMAGES, calibration_batches
from fnnkit.formats.pt2 import check_cpu_runs, required_flags

VARIANT = "A"
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 avx avx2 fma f16c bmi1 bmi2 movbe avx512f avx512bw avx512cd avx512dq avx512vl avx512_bf16
processor\t: 1
flags\t\t: something else
"""
AVX2_ONLY = frozenset(["sse", "sse2", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"])


@pytest.fixture(scope="module")
def folder(exported_root, tmp_path_factory) -> Path:
    """A private copy of the shared export of variant A (onnx, onnx-int8, onnx-int8-static among its files)."""
    return copy_variants(exported_root, tmp_path_factory.mktemp("precision"), VARIANT) / DATASET / VARIANT


# --------------------------------------------------------------------------- capabilities


def test_cpuinfo_flags_are_read_from_the_first_processor():
    flags = parse_cpuinfo_flags(CPUINFO)
    caps = CpuCapabilities(flags, "AVX512")
    assert "avx512_bf16" in flags and "something" not in flags
    assert caps.best_isa() == "avx512" and caps.bf16 == "avx512_bf16" and caps.int8 is None
    assert caps.native("fp16") is None
    older = CpuCapabilities(AVX2_ONLY, "AVX2")
    assert older.best_isa() == "avx2" and not older.supports_isa("avx512") and older.bf16 is None
    assert older.missing(("avx2", "avx512f", "amx_tile")) == ["avx512f", "amx_tile"]


def test_this_machine_agrees_with_torchs_own_probe():
    caps = cpu_capabilities()
    probe = torch.backends.cpu.get_cpu_capability()
    if probe.startswith("AVX512"):
        assert caps.supports_isa("avx512"), caps.describe()
    if probe.startswith("AVX"):
        assert caps.supports_isa("avx2"), caps.describe()


def test_isa_choice_is_validated_at_the_boundary():
    with pytest.raises(ConfigError, match="valid choices: avx2, avx512, native"):
        check_isa("sse9")
    assert check_isa(" NATIVE ") == "native"
    if not cpu_capabilities().supports_isa("avx512"):
        with pytest.raises(ConfigError, match="lacks"):
            check_isa("avx512")


def test_package_for_a_missing_isa_is_refused_in_one_line():
    path = Path("model.pt2")
    with pytest.raises(ArtifactError, match="lacks amx_fake_flag.*illegal instruction.*--isa avx2"):
        check_cpu_runs({"fnnkit_isa": "native", "fnnkit_isa_flags": "avx2 amx_fake_flag"}, path)
    check_cpu_runs(
        {"fnnkit_isa": "avx2", "fnnkit_isa_flags": " ".join(sorted(cpu_capabilities().flags & AVX2_ONLY))}, path
    )
    # a package fnnkit did not write: torch's own AOTI_CPU_ISA record is honoured
    assert "avx512f" in required_flags({"AOTI_CPU_ISA": "AVX512 AVX512_VNNI AMX_TILE"})
    assert "amx_tile" in required_flags({"AOTI_CPU_ISA": "AVX512 AVX512_VNNI AMX_TILE"})
    check_cpu_runs({"AOTI_DEVICE_KEY": "cuda", "fnnkit_isa_flags": "amx_fake_flag"}, path)  # GPU code: not a CPU ISA


# --------------------------------------------------------------------------- precision offered by capability


@pytest.mark.parametrize("name", [n for n, b in BACKENDS.items() if b.hardware_gated])
def test_reduced_precision_on_cpu_follows_the_hardware(name):
    backend = get_backend(name)
    ok, reason = backend.available("cpu")
    assert ok == (cpu_capabilities().native(backend.precision) is not None), reason
    if not ok:
        assert "cpuinfo" in reason or "native" in reason, reason


def test_openvino_fp32_is_forced_not_left_to_its_default(folder):
    ok, reason = get_backend("openvino").available("cpu")
    if not ok:
        pytest.skip(reason)
    predictor = get_backend("openvino").load(folder, "cpu", threads=1)
    assert predictor.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    assert predictor.compiled.get_property("INFERENCE_NUM_THREADS") == 1


# --------------------------------------------------------------------------- static int8


def test_static_int8_is_qdq_with_per_channel_weights(folder):
    import onnx

    proto = onnx.load(folder / "model.int8-static.onnx")
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    scales = {i.name: i for i in proto.graph.initializer}
    per_channel = [
        n for n in proto.graph.node
        if n.op_type == "DequantizeLinear" and n.input[1] in scales and len(scales[n.input[1]].dims) == 1
        and scales[n.input[1]].dims[0] > 1
    ]  # fmt: skip
    assert per_channel, "no per-channel weight scales"


def test_calibration_uses_training_images_in_a_fixed_order(sample_data):
    images = preprocess(sample_data.train_x)
    first = [b["input"] for b in calibration_batches(images)]
    again = [b["input"] for b in calibration_batches(images)]
    assert sum(len(b) for b in first) == min(CALIBRATION_IMAGES, len(images))
    assert all((a == b).all() for a, b in zip(first, again, strict=True))


def test_every_onnx_file_has_fnnkits_producer_version(folder):
    import onnx

    for name in ("model.onnx", "model.int8.onnx", "model.int8-static.onnx"):
        proto = onnx.load(folder / name)
        assert (proto.producer_name, proto.producer_version) == ("fnnkit", __version__), name


# --------------------------------------------------------------------------- ceilings and cold start


def test_each_precision_has_its_own_ceiling():
    assert ceiling_precisions(["eager", "onnxruntime-int8", "eager-bf16"]) == ["fp32", "bf16", "int8"]
    for precision in ("fp32", "int8"):
        ceiling = matmul_ceiling(1, size=256, min_time_s=0.02, precision=precision)
        assert ceiling.precision == precision and ceiling.gflops >= ceiling.median_gflops > 0


@pytest.mark.parametrize("precision", ["bf16", "fp16", "int8"])
def test_a_ceiling_is_measured_only_for_a_precision_native_here(precision, monkeypatch):
    """On a CPU without the native flag no such backend is offered, and the emulated matmul takes seconds."""
    from fnnkit.backends import get_backend
    from fnnkit.bench import ceiling as ceilings
    from fnnkit.bench.config import BenchConfig
    from fnnkit.capabilities import cpu_capabilities

    measured = []
    monkeypatch.setattr(
        ceilings, "repetition_rates", lambda threads, device, precision: measured.append(precision) or [1.0]
    )
    backend = {"bf16": "eager-bf16", "fp16": "eager-fp16", "int8": "onnxruntime-int8"}[precision]
    config = BenchConfig(variants=("A",), backends=("eager", backend), batch_sizes=(1,), devices=("cpu",))
    usable = {(b, d): get_backend(b).available(d) for b in config.backends for d in config.devices}
    ceilings.measure_ceilings(config, usable=usable)
    native = cpu_capabilities().native(precision) is not None
    assert measured == (["fp32", precision] if native else ["fp32"])


def test_a_ceiling_is_the_median_of_its_repetitions_with_their_spread():
    """One repetition taken on a busy moment (100 of ~344 GFLOP/s) does not set the ceiling."""
    ceiling = summarize("cpu", 2, "fp32", [344.0, 100.0, 350.0, 340.0, 347.0])
    assert ceiling.gflops == 344.0 and ceiling.samples == 5
    assert ceiling.spread == pytest.approx((350 - 100) / 344, abs=1e-4)
    rates = repetition_rates(1, size=128, repetitions=3)
    assert len(rates) == 3 and all(r > 0 for r in rates)


def test_the_cpu_fp32_ceiling_is_the_better_of_torch_and_onnx_runtime(monkeypatch):
    """A torch matmul slower than ONNX Runtime's MLAS (MKL's path on AMD) must not set the ceiling the ORT rows beat."""
    import fnnkit.bench.ceiling as ceiling

    monkeypatch.setattr(ceiling, "_rates", lambda *args: [1.0])  # torch: 1 GFLOP/s
    rates = ceiling.repetition_rates(1, size=128, repetitions=2)
    assert len(rates) == 2 and all(r > 1.0 for r in rates)  # ONNX Runtime's own MatMul measured higher
    assert ceiling.repetition_rates(1, size=128, precision="int8", repetitions=1) == [1.0]  # int8: torch's kernel only


def test_a_row_above_its_ceiling_is_flagged_not_shown_as_a_share():
    from benchrows import row

    from fnnkit.bench.results import Ceiling
    from fnnkit.bench.runner import annotate

    ceilings = [Ceiling("cpu", 1, 2048, 100.0, 100.0, 8, "fp32", 0.1)]
    rows = annotate([row(gflops=50.0), row(backend="onnxruntime", gflops=120.0)], ceilings)
    shares = [(r.versus.ceiling_share, r.versus.ceiling_suspect) for r in rows]
    assert shares == [(0.5, False), (None, True)]  # above 100% is never printed as a share


def test_cold_start_refuses_up_front_when_no_backend_asked_for_can_start(tmp_path, monkeypatch):
    """TensorRT has no CPU device: nothing asked for can start cold, so no baseline process is spawned either."""
    import fnnkit.bench.coldstart as coldstart

    monkeypatch.setattr(coldstart, "run_once", lambda *a, **k: pytest.fail("a process was started"))
    with pytest.raises(BackendUnavailable, match="(?s)nothing to run here.*onnxruntime-trt on cpu: "):
        measure_cold_starts(ColdStartConfig(backends=("onnxruntime-trt",), repeats=1, artifacts=str(tmp_path)))


def test_cold_start_percentiles_are_observed_runs():
    """Nearest rank: of 10 runs, p50 is the 5th fastest and p90 the 9th, never a value between two runs."""
    ten = summarize_cold("x", [{"load": float(v), "total": 2.0 * v} for v in (4, 1, 3, 2, 10, 5, 9, 6, 8, 7)])
    assert ten.p50_s == {"load": 5.0, "total": 10.0} and ten.p90_s == {"load": 9.0, "total": 18.0}  # observed runs


@pytest.mark.slow  # three fresh processes that import torch: 7-15 s on 2 shared cores
def test_cold_start_runs_fresh_processes(folder):
    config = ColdStartConfig(
        variant=folder.name, dataset=folder.parent.name, backends=("eager", "eager-fp16"), repeats=1,
        artifacts=str(folder.parent.parent),
    )  # fmt: skip
    run = measure_cold_starts(config)
    by_name = {r.name: r for r in run.results}
    assert set(by_name) >= {"python", "import torch", "eager"}
    eager = by_name["eager"]
    assert set(eager.p50_s) == {"import", "load", "first", "total"}
    assert eager.p50_s["total"] >= eager.p50_s["import"] + eager.p50_s["load"] + eager.p50_s["first"]
    assert by_name["python"].p50_s["total"] < by_name["import torch"].p50_s["total"]
    if not get_backend("eager-fp16").available("cpu")[0]:
        assert [s.backend for s in run.skipped] == ["eager-fp16"]
    assert run.header.kind == "coldstart" and run.header.config["repeats"] == 1
    with pytest.raises(ValidationError, match="repeats"):
        ColdStartConfig(repeats=0)


@pytest.mark.slow  # two fresh fnnkit processes: ~6 s
def test_cli_refuses_bad_isa_and_repeats_in_one_line(tmp_path):
    from clitools import assert_user_error, run_fnnkit

    result = run_fnnkit("export", "--isa", "sse9", "--variant", "A", "--artifacts", str(tmp_path))
    assert_user_error(result, "unknown isa 'sse9'", "avx2, avx512, native")
    assert_user_error(
        run_fnnkit("bench", "coldstart", "--repeats", "0", "--artifacts", str(tmp_path)),
        "--repeats must be a positive integer",
    )
