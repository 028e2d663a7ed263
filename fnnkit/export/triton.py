"""A Triton Inference Server model repository from verified ONNX exports, and the checks `fnnkit verify` runs on one.

Layout (Triton's own): ``<out>/fnnkit_<dataset>_<variant>[_int8]/config.pbtxt``, ``1/model.onnx``,
``labels.txt``. The ONNX bytes are the ones ``read_exported`` sha256-checked and vetted; their
sha256 and the trained weights' sha256 go into the config's ``parameters``, so a repository can
be traced back to, and checked against, the training that made it. Each model folder is staged
beside the target and renamed into place, so Triton never sees a config without its model.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from fnnkit.errors import ArtifactError, ConfigError, ExportError
from fnnkit.export.base import INPUT_NAME, OUTPUT_NAME
from fnnkit.export.core import is_exported, read_exported
from fnnkit.export.onnx_files import _check_interface, vet_onnx
from fnnkit.store import atomic_write_bytes, ensure_writable_dir, read_model_card, sha256_bytes
from fnnkit.variants import INPUT_DIM, NUM_CLASSES

CONFIG, LABELS, VERSION = "config.pbtxt", "labels.txt", "1"
ONNX_IN_REPO = "model.onnx"  # Triton's onnxruntime backend default file name
FLAVOURS = {"onnx": "", "onnx-int8": "_int8"}  # export format -> model-name suffix
WEIGHTS_KEY, ONNX_KEY = "fnnkit_weights_sha256", "fnnkit_onnx_sha256"
TRITON_EXTRA = "pip install 'fnnkit[triton]'  (tritonclient ships Triton's ModelConfig schema)"


@dataclass(frozen=True)
class TritonSettings:
    """Serving knobs written into every config; validated once, here."""

    max_batch_size: int = 1024  # Triton splits larger requests; the ONNX batch axis is dynamic
    queue_delay_us: int = 100  # how long the scheduler waits to fill a batch: +0.1 ms latency for throughput
    preferred_batch_sizes: tuple[int, ...] = (64, 256)
    instances: int = 1
    kind: str = "KIND_CPU"  # KIND_GPU for --device cuda; int8 stays on CPU (no CUDA MatMulInteger kernels)
    warmup_batch: int = 64

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_size <= 1 << 20:
            raise ConfigError(f"triton max_batch_size {self.max_batch_size} must be in 1..1048576")
        if not 0 <= self.queue_delay_us <= 1_000_000:
            raise ConfigError(f"triton queue delay {self.queue_delay_us} us must be in 0..1000000")
        if not 1 <= self.instances <= 64:
            raise ConfigError(f"triton instance count {self.instances} must be in 1..64")
        if self.kind not in ("KIND_CPU", "KIND_GPU"):
            raise ConfigError(f"triton instance kind {self.kind!r} must be KIND_CPU or KIND_GPU")


@dataclass(frozen=True)
class TritonModel:
    name: str
    folder: Path
    onnx_sha256: str
    format: str


def model_name(dataset: str, variant: str, format: str) -> str:
    return f"fnnkit_{dataset}_{variant}{FLAVOURS[format]}"


def config_text(name: str, settings: TritonSettings, weights_sha256: str, onnx_sha256: str, int8: bool) -> str:
    """config.pbtxt in protobuf text format (Triton's ModelConfig); tests parse it with Triton's own schema."""
    kind = "KIND_CPU" if int8 else settings.kind
    preferred = ", ".join(str(b) for b in settings.preferred_batch_sizes if b <= settings.max_batch_size)
    warmup = min(settings.warmup_batch, settings.max_batch_size)
    return f"""name: "{name}"
backend: "onnxruntime"
max_batch_size: {settings.max_batch_size}
version_policy: {{ latest: {{ num_versions: 1 }} }}
input [
  {{ name: "{INPUT_NAME}", data_type: TYPE_FP32, dims: [ {INPUT_DIM} ] }}
]
output [
  {{ name: "{OUTPUT_NAME}", data_type: TYPE_FP32, dims: [ {NUM_CLASSES} ], label_filename: "{LABELS}" }}
]
dynamic_batching {{
  preferred_batch_size: [ {preferred} ]
  max_queue_delay_microseconds: {settings.queue_delay_us}
}}
instance_group [ {{ count: {settings.instances}, kind: {kind} }} ]
model_warmup [
  {{
    name: "random_batch_{warmup}"
    batch_size: {warmup}
    inputs {{ key: "{INPUT_NAME}", value: {{ data_type: TYPE_FP32, dims: [ {INPUT_DIM} ], random_data: true }} }}
  }}
]
parameters {{ key: "{WEIGHTS_KEY}", value: {{ string_value: "{weights_sha256}" }} }}
parameters {{ key: "{ONNX_KEY}", value: {{ string_value: "{onnx_sha256}" }} }}
"""


def write_repository(folder: Path, out: Path, settings: TritonSettings) -> list[TritonModel]:
    """One Triton model per exported ONNX flavour of the variant in ``folder`` (fp32 always, int8 when exported)."""
    card = read_model_card(folder)
    dataset, variant = card["dataset"]["name"], card["variant"]["name"]
    classes = [str(c) for c in card["dataset"].get("classes") or range(NUM_CLASSES)]
    models = []
    for fmt in FLAVOURS:
        if fmt != "onnx" and not is_exported(folder, fmt, "cpu"):
            continue
        data, _ = read_exported(folder, fmt, "cpu")  # sha256-checked against export.json, vetted
        name, digest = model_name(dataset, variant, fmt), sha256_bytes(data)
        text = config_text(name, settings, card["weights"]["sha256"], digest, int8=fmt != "onnx")
        files = {CONFIG: text.encode(), LABELS: ("\n".join(classes) + "\n").encode(), f"{VERSION}/{ONNX_IN_REPO}": data}
        _commit_folder(out / name, files)
        models.append(TritonModel(name, out / name, digest, fmt))
    return models


def _commit_folder(target: Path, files: dict[str, bytes]) -> None:
    """Stage every file in a sibling folder (each fsynced), then swap it in: no half-written model is ever visible."""
    ensure_writable_dir(target.parent)
    stage = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        for relative, data in files.items():
            atomic_write_bytes(stage / relative, data)
        if target.exists():
            os.replace(target, old)
        os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if old.exists() and not target.exists():
            os.replace(old, target)  # put the previous model back
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- checks for `fnnkit verify`


def is_triton_model(folder: Path) -> bool:
    return (folder / CONFIG).is_file() and (folder / VERSION).is_dir()


def parse_config(path: Path):
    """config.pbtxt parsed with Triton's own ModelConfig protobuf schema (shipped by tritonclient)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ArtifactError(f"cannot check {path}: Triton's schema is not installed; {TRITON_EXTRA}") from None
    try:
        return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} does not parse as Triton's ModelConfig: {exc}") from None


def check_model(folder: Path) -> list[tuple[str, str]]:
    """(check, what was confirmed) for one Triton model folder; ArtifactError names the first problem."""
    config = parse_config(folder / CONFIG)
    done = [("config parses", f"ModelConfig {config.name!r}, backend {config.backend!r}")]
    if config.name != folder.name:
        raise ArtifactError(f"{folder / CONFIG}: name {config.name!r} differs from its folder {folder.name!r}")
    if config.backend != "onnxruntime" or config.max_batch_size < 1:
        raise ArtifactError(f"{folder / CONFIG}: needs backend 'onnxruntime' and max_batch_size >= 1 (batch axis)")
    io = [(t.name, list(t.dims)) for t in config.input], [(t.name, list(t.dims)) for t in config.output]
    if io != ([(INPUT_NAME, [INPUT_DIM])], [(OUTPUT_NAME, [NUM_CLASSES])]):
        raise ArtifactError(f"{folder / CONFIG}: tensors {io}, expected input [{INPUT_DIM}] -> logits [{NUM_CLASSES}]")
    model = folder / VERSION / ONNX_IN_REPO
    try:
        data = model.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {model}: {exc.strerror or exc}") from None
    recorded = config.parameters[ONNX_KEY].string_value if ONNX_KEY in config.parameters else ""
    if sha256_bytes(data) != recorded:
        raise ArtifactError(
            f"{model}: sha256 {sha256_bytes(data)[:16]}... is not the {ONNX_KEY} in {CONFIG}; re-export"
        )
    done.append(("sha256", f"{model.name} matches {ONNX_KEY} {recorded[:16]}..."))
    vet_onnx(data, model)
    import onnx

    try:
        _check_interface(onnx.load_model_from_string(data))
    except ExportError as exc:
        raise ArtifactError(f"{model}: {exc}") from None
    done.append(("interface", f"ONNX input [batch, {INPUT_DIM}] -> logits [batch, {NUM_CLASSES}] matches the config"))
    labels = (folder / LABELS).read_text().splitlines() if (folder / LABELS).is_file() else []
    if len(labels) != NUM_CLASSES:
        raise ArtifactError(f"{folder / LABELS}: {len(labels)} labels, expected {NUM_CLASSES}")
    return done


def is_triton_repository(path: Path) -> bool:
    """A Triton model folder, or a folder whose children include one."""
    return is_triton_model(path) or any(is_triton_model(p) for p in path.iterdir() if p.is_dir())


def check_repository(root: Path) -> list[tuple[Path, str, bool, str]]:
    """Every model folder under ``root``: (folder, check, ok, note or problem), for `fnnkit verify`."""
    folders = [root] if is_triton_model(root) else sorted(p for p in root.iterdir() if is_triton_model(p))
    if not folders:
        raise ArtifactError(f"{root} holds no Triton model folders (<name>/{CONFIG} and <name>/{VERSION}/)")
    rows = []
    for folder in folders:
        try:
            rows += [(folder, check, True, note) for check, note in check_model(folder)]
        except ArtifactError as exc:
            rows.append((folder, "triton model", False, str(exc)))
    return rows
