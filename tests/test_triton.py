"""`fnnkit export --format triton`: a model repository whose config parses with Triton's own schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from artifactkit import DATASET
from clitools import assert_user_error, run_fnnkit

from fnnkit.errors import ConfigError
from fnnkit.export.triton import CONFIG, TritonSettings
from fnnkit.export.triton_check import check_repository, parse_config
from fnnkit.store import read_model_card, sha256_file
from fnnkit.verify import verify

pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="Triton's schema: pip install 'fnnkit[triton]'")

MODELS = (f"fnnkit_{DATASET}_C", f"fnnkit_{DATASET}_C_int8")


@pytest.fixture(scope="module")
def repository(served_root, tmp_path_factory) -> Path:
    """`fnnkit export --format triton` run as a user runs it, once."""
    artifacts = served_root
    out = tmp_path_factory.mktemp("triton") / "models"
    result = run_fnnkit(
        "export", "--format", "triton", "--variant", "C", "--dataset", DATASET,
        "--artifacts", str(artifacts), "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize("name", MODELS)
def test_config_parses_with_tritons_schema(repository, trained_root, name):
    """Every field the issue asks for, read back through Triton's ModelConfig protobuf."""
    from tritonclient.grpc import model_config_pb2 as mc

    config = parse_config(repository / name / CONFIG)
    assert config.name == name and config.backend == "onnxruntime" and config.max_batch_size >= 1
    assert [(t.name, list(t.dims), t.data_type) for t in config.input] == [("input", [784], mc.TYPE_FP32)]
    assert [(t.name, list(t.dims), t.label_filename) for t in config.output] == [("logits", [10], "labels.txt")]
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    assert config.instance_group[0].count >= 1 and config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    (warmup,) = config.model_warmup
    assert warmup.batch_size >= 1 and warmup.inputs["input"].random_data
    card = read_model_card(trained_root / DATASET / "C")
    assert config.parameters["fnnkit_weights_sha256"].string_value == card["weights"]["sha256"]
    assert config.parameters["fnnkit_onnx_sha256"].string_value == sha256_file(repository / name / "1" / "model.onnx")
    assert (repository / name / "labels.txt").read_text().split() == [str(i) for i in range(10)]


def test_verify_accepts_the_repository_and_names_a_swapped_model(repository, tmp_path):
    checks = verify(repository)
    assert checks and all(c.ok for c in checks), [c.problem for c in checks if not c.ok]
    copy = tmp_path / "models"
    shutil.copytree(repository, copy)
    shutil.copy(copy / MODELS[1] / "1" / "model.onnx", copy / MODELS[0] / "1" / "model.onnx")  # int8 in fp32's place
    bad = [c for c in verify(copy) if not c.ok]
    assert bad and all(c.file == copy / MODELS[0] / "1" / "model.onnx" for c in bad), bad
    assert any("sha256" in c.problem for c in bad) and any("QuantizeLinear" in c.problem for c in bad), bad


def test_config_that_disagrees_with_the_onnx_interface_is_a_problem(repository, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(repository, copy)
    config = copy / MODELS[0] / CONFIG
    config.write_text(config.read_text().replace("dims: [ 784 ]", "dims: [ 28, 28 ]", 1))
    (row,) = [r for r in check_repository(copy) if not r[2]]
    assert row[0] == config and "input" in row[3]
    config.write_text("name: 'x' this is not protobuf text {")
    assert "does not parse as Triton's ModelConfig" in next(r[3] for r in check_repository(copy) if not r[2])


@pytest.mark.parametrize("name", MODELS)
def test_a_digit_gets_the_same_answer_alone_and_in_any_batch(repository, served_root, sample_data, name):
    """Triton batches unrelated requests together: each model's answer for a sample must not depend on its
    neighbours (the int8 model is the static, calibrated one). The dynamic int8 file shows the test can fail."""
    import numpy as np

    from fnnkit.data import preprocess
    from fnnkit.export.triton import BATCH_TOLERANCE

    digits = preprocess(sample_data.test_x[:64]).numpy()
    rng = np.random.default_rng(0)
    neighbours = np.concatenate([np.full((2, 784), 255, np.float32), rng.random((16, 784), dtype=np.float32) * 255])

    def worst(path: Path) -> tuple[float, int]:
        session = _session(path)
        alone = np.concatenate([session.run(None, {"input": digits[i : i + 1]})[0] for i in range(len(digits))])
        mixed = session.run(None, {"input": np.concatenate([neighbours, digits])})[0][len(neighbours) :]
        return float(np.abs(alone - mixed).max()), int((alone.argmax(1) != mixed.argmax(1)).sum())

    delta, flips = worst(repository / name / "1" / "model.onnx")
    assert delta <= BATCH_TOLERANCE and flips == 0, (delta, flips)
    if name.endswith("_int8"):
        dynamic_delta, _ = worst(served_root / DATASET / "C" / "model.int8.onnx")
        assert dynamic_delta > 100 * BATCH_TOLERANCE, dynamic_delta  # what the dynamic one would have served


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.slow  # two repository writes, each a real export check: ~1.8 s
def test_rewriting_replaces_a_model_folder_whole(repository, served_root):
    """A second export swaps each model folder in as one unit: no staging folders are left, only the lock files."""
    artifacts = served_root
    result = run_fnnkit(
        "export", "--format", "triton", "--variant", "C", "--dataset", DATASET,
        "--artifacts", str(artifacts), "--out", str(repository),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in repository.iterdir()) == sorted([*MODELS, *(f".{m}.lock" for m in MODELS)])


def test_bad_settings_and_missing_out_are_user_errors(served_root, cli):
    with pytest.raises(ConfigError, match="max_batch_size"):
        TritonSettings(max_batch_size=0)
    artifacts = served_root
    result = cli("export", "--format", "triton", "--variant", "C", "--artifacts", str(artifacts))
    assert_user_error(result, "--format triton needs --out DIR")
