"""A Triton Inference Server model repository from verified ONNX exports.

Layout (Triton's own): ``<out>/fnnkit_<dataset>_<variant>[_int8]/config.pbtxt``, ``1/model.onnx``,
``labels.txt``. The ONNX bytes are the ones ``read_exported`` sha256-checked and vetted; their
sha256 and the trained weights' sha256 go into the config's ``parameters``, so a repository can
be traced back to, and checked against, the training that made it (``triton_check``, what
``fnnkit verify`` runs). The ``_int8`` model is the static (calibrated) int8 export: its
activation ranges are fixed, so a sample gets the same answer whatever else shares its batch
(dynamic int8 measures each batch's range, and Triton batches unrelated requests together).

Each model folder is written as one unit through the store's commit (``store.commit_files``):
staged beside the target, swapped in by ``renameat2(RENAME_EXCHANGE)`` (or two renames where the
filesystem cannot exchange), under a lock beside it (``.<model>.lock``); the next writer repairs
whatever a killed one left. Triton never sees a config without its model.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fnnkit.errors import ArtifactError, ConfigError
from fnnkit.formats.manifest import is_exported, read_exported
from fnnkit.formats.onnx import INPUT_NAME, OUTPUT_NAME
from fnnkit.store import Artifact, commit_files, folder_lock, read_model_card, sha256_bytes
from fnnkit.variants import INPUT_DIM, NUM_CLASSES

CONFIG, LABELS, VERSION = "config.pbtxt", "labels.txt", "1"
ONNX_IN_REPO = "model.onnx"  # Triton's onnxruntime backend default file name
MODEL_FILES = (CONFIG, LABELS, f"{VERSION}/{ONNX_IN_REPO}")  # everything fnnkit writes in a model folder
FLAVOURS = {"onnx": "", "onnx-int8-static": "_int8"}  # export format -> model-name suffix
INT8_SUFFIX = "_int8"
MODEL_NAME_RE = re.compile(r"^fnnkit_(?P<dataset>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})_(?P<variant>[A-Z])(?P<int8>_int8)?$")
BATCH_TOLERANCE = 1e-4  # max |logits alone - logits inside any batch| for both models (FP32's parity bound)
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
        if not all(1 <= b <= 1 << 20 for b in self.preferred_batch_sizes) or not 1 <= self.warmup_batch <= 1 << 20:
            raise ConfigError("triton preferred and warm-up batch sizes must be in 1..1048576")


@dataclass(frozen=True)
class TritonModel:
    name: str
    folder: Path
    onnx_sha256: str
    format: str


def model_name(dataset: str, variant: str, format: str) -> str:
    return f"fnnkit_{dataset}_{variant}{FLAVOURS[format]}"


def labels_text(dataset: str) -> str:
    """labels.txt: the dataset's class names, one a line, in logit order."""
    from fnnkit.data import DIGITS
    from fnnkit.data.sources import IDX_SOURCES

    source = IDX_SOURCES.get(dataset)
    return "\n".join(source.classes if source else DIGITS) + "\n"


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


def target_names(folder: Path) -> list[str]:
    """The model folders ``write_repository`` may write for the trained variant in ``folder``."""
    artifact = Artifact.at(folder)
    return [model_name(artifact.dataset, artifact.variant, fmt) for fmt in FLAVOURS]


def check_out(out: Path, names: list[str]) -> Path:
    """``--out``, checked before any work: a folder (or nothing yet), whose model folders of these names hold
    only what fnnkit writes there (they are replaced whole, and a user's file must not vanish without a word)."""
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot inspect it ({exc.strerror})") from None
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"--out {out} is not a folder; give the Triton model repository's folder")
    for name in names:
        foreign = foreign_entries(out / name)
        if foreign:
            shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
            raise ConfigError(
                f"--out {out}: {name}/ holds what fnnkit did not write there ({shown}); fnnkit replaces a model "
                "folder whole, so move those elsewhere (or remove the folder) and export again"
            )
    return out


def foreign_entries(target: Path) -> list[str]:
    """What is in a model folder besides fnnkit's own files (relative names, folders with a '/')."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(mode):
        return [target.name]
    found = []
    for entry in sorted(os.scandir(target), key=lambda e: e.name):
        if entry.name == VERSION and entry.is_dir(follow_symlinks=False):
            found += [f"{VERSION}/{e.name}" for e in os.scandir(entry.path) if e.name != ONNX_IN_REPO]
            found += [f"{VERSION}/{ONNX_IN_REPO}"] * _not_regular(Path(entry.path) / ONNX_IN_REPO)
        elif entry.name not in (CONFIG, LABELS) or not entry.is_file(follow_symlinks=False):
            found.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    return found


def _not_regular(path: Path) -> bool:
    try:
        return not stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def write_repository(
    folder: Path,
    out: Path,
    settings: TritonSettings,
    formats: tuple[str, ...] | None = None,
    check: Callable[[Path, str], None] | None = None,
) -> list[TritonModel]:
    """One Triton model per exported ONNX flavour of the variant in ``folder`` (fp32 always, static int8 when
    exported; exactly ``formats`` when given), each folder written as one unit; ``check(staged folder, model
    name)`` runs before it replaces an earlier one, and what it raises leaves that one as it was."""
    card = read_model_card(folder)
    dataset, variant = card["dataset"]["name"], card["variant"]["name"]
    labels = labels_text(dataset).encode()
    models = []
    for fmt in formats or FLAVOURS:
        if formats is None and fmt != "onnx" and not is_exported(folder, fmt, "cpu"):
            continue
        data, _ = read_exported(folder, fmt, "cpu")  # sha256-checked against export.json, vetted
        name, digest = model_name(dataset, variant, fmt), sha256_bytes(data)
        text = config_text(name, settings, card["weights"]["sha256"], digest, int8=fmt != "onnx").encode()
        files = {CONFIG: text, LABELS: labels, f"{VERSION}/{ONNX_IN_REPO}": data}
        commit_model(out / name, files, None if check is None else functools.partial(check, name=name))
        models.append(TritonModel(name, out / name, digest, fmt))
    return models


def commit_model(target: Path, files: dict[str, bytes], before_swap: Callable[[Path], None] | None = None) -> None:
    """Replace one model folder whole, under its lock; a user's file inside it stops the write instead."""
    with folder_lock(target):  # repairs what a killed writer left beside it first
        foreign = foreign_entries(target)
        if foreign:
            raise ArtifactError(
                f"{target} holds what fnnkit did not write there ({', '.join(foreign[:4])}); move it elsewhere "
                "and export again"
            )
        writers = {rel: (lambda path, d=data: path.write_bytes(d)) for rel, data in files.items()}
        commit_files(target, writers, carry=False, before_swap=before_swap)
