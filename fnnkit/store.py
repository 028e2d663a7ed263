"""Where artifacts live, how they are written (atomically) and read back (verified).

Layout: ``<root>/<dataset>/<variant>/`` holds ``model.safetensors`` + ``model.json`` and
the exported files. Every write goes to a uniquely named temporary file in the same folder
and is renamed into place, under a per-folder lock, so a crash, Ctrl-C or a second process
never leaves a half-written or mismatched artifact. Every read checks the sha256 recorded
at write time, on the very bytes it then deserialises (no check-then-reopen race).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fnnkit.errors import ArtifactError, IntegrityError

WEIGHTS_FILE = "model.safetensors"
MODEL_CARD = "model.json"
EXPORT_MANIFEST = "export.json"
MODEL_SCHEMA = "fnnkit.model/1"
DATASET_PREFERENCE = ("mnist", "fashion-mnist", "mnist-sample")  # best data first

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+$")
_REQUIRED_CARD_FIELDS = ("schema", "variant", "dataset", "weights", "test_accuracy", "history")


def variant_dir(root: str | os.PathLike, dataset: str, variant: str) -> Path:
    return Path(root) / dataset / variant


def trained_datasets(root: str | os.PathLike) -> list[str]:
    """Datasets with at least one trained variant under ``root``, best data first."""
    root = Path(root)
    found = [d.name for d in root.iterdir() if d.is_dir() and any(d.glob(f"*/{MODEL_CARD}"))] if root.is_dir() else []
    return sorted(found, key=lambda n: (DATASET_PREFERENCE.index(n) if n in DATASET_PREFERENCE else 99, n))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temp files left by writers that died (kill -9, power loss); returns them.

    A temp file names its writer's pid; one whose pid is alive belongs to a running writer
    and is left alone.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match and not _pid_alive(int(match["pid"])):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on a folder: two processes saving into it take turns."""
    folder = Path(folder)
    ensure_writable_dir(folder)
    with open(folder / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_writable_dir(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(
            f"cannot create artifacts folder {folder}: {exc.strerror}; "
            "choose another with --artifacts or fix its permissions"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArtifactError(
            f"artifacts folder {folder} is not writable; choose another with --artifacts or fix its permissions"
        )
    return folder


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write(temp_path)``, fsync, then rename over ``path``.

    On any failure (exception, Ctrl-C, disk full) the temp file is removed and the previous
    ``path`` is untouched.
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    sweep_stale_temps(path.parent)
    temp = temp_path_for(path)
    try:
        write(temp)
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise ArtifactError(f"could not write {path}: {exc.strerror or exc}; nothing was changed") from exc
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def atomic_write_json(path: str | os.PathLike, payload: Any) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())


def read_json(path: str | os.PathLike, *, what: str = "JSON file") -> dict:
    """Parse a JSON object, turning every failure into an ArtifactError naming the file."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{what} {path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{what} {path} is not valid JSON ({exc}); re-create it") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read {what} {path}: {exc.strerror}") from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{what} {path} must hold a JSON object, found {type(payload).__name__}")
    return payload


def read_verified(path: str | os.PathLike, expected_sha256: str) -> bytes:
    """The file's bytes, only if they hash to ``expected_sha256``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; re-create it (see `fnnkit --help`)") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror}") from None
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{path} has sha256 {actual[:16]}..., but {expected_sha256[:16]}... was recorded when fnnkit "
            "wrote it: the file was changed or damaged. Refusing to load it; re-create it with fnnkit."
        )
    return data


def read_model_card(folder: str | os.PathLike) -> dict:
    """``model.json`` of a trained variant, with its schema and required fields checked."""
    path = Path(folder) / MODEL_CARD
    if not path.exists():
        raise ArtifactError(
            f"no trained model in {Path(folder)} ({MODEL_CARD} missing); "
            f"train it first: fnnkit train --variant {Path(folder).name} --dataset {Path(folder).parent.name}"
        )
    card = read_json(path, what="model card")
    missing = [field for field in _REQUIRED_CARD_FIELDS if field not in card]
    if missing:
        raise ArtifactError(f"model card {path} lacks field(s) {', '.join(missing)}; re-train to re-create it")
    if card["schema"] != MODEL_SCHEMA:
        raise ArtifactError(f"model card {path} has schema {card['schema']!r}, this fnnkit reads {MODEL_SCHEMA!r}")
    weights = card["weights"]
    if not isinstance(weights, dict) or not isinstance(weights.get("sha256"), str):
        raise ArtifactError(f"model card {path}: field 'weights' must hold 'file' and 'sha256'")
    return card


def save_trained(folder: str | os.PathLike, state_dict: dict, card: dict) -> Path:
    """Write weights then the card that vouches for them, under the folder lock.

    The card is renamed into place last, so a reader never sees a card pointing at weights
    that are not there yet; a crash between the two leaves the old card, which refuses
    the new weights by sha256 rather than loading them unvouched.
    """
    from safetensors.torch import save as safetensors_save

    folder = ensure_writable_dir(folder)
    metadata = {"variant": card["variant"]["name"], "dataset": card["dataset"]["name"]}
    data = safetensors_save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, metadata=metadata)
    card = {**card, "weights": {"file": WEIGHTS_FILE, "sha256": sha256_bytes(data), "bytes": len(data)}}
    with folder_lock(folder):
        atomic_write_bytes(folder / WEIGHTS_FILE, data)
        atomic_write_json(folder / MODEL_CARD, card)
    return folder


def load_state_dict(folder: str | os.PathLike, card: dict | None = None) -> dict:
    """Weights of a trained variant, after their sha256 matched the card's and their header passed
    the checks `fnnkit verify` runs (lengths, offsets, the variant's tensor names, dtypes, shapes)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_load

    from fnnkit.verify import vet_safetensors

    folder = Path(folder)
    card = card or read_model_card(folder)
    path = folder / WEIGHTS_FILE
    data = read_verified(path, card["weights"]["sha256"])
    vet_safetensors(data, path, spec_from_card(card, folder / MODEL_CARD))
    try:
        return safetensors_load(data)
    except (SafetensorError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a valid safetensors file ({exc})") from None


def spec_from_card(card: dict, path: str | os.PathLike = MODEL_CARD):
    """The VariantSpec a model card describes, rebuilt through the variant table's validation."""
    from fnnkit.variants import VariantSpec

    variant = card["variant"]
    try:
        return VariantSpec(
            variant["name"], variant["activation"], int(variant["hidden_layers"]), int(variant["hidden_dim"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"model card {path}: field 'variant' is malformed ({exc})") from None


def load_trained(folder: str | os.PathLike, device: str = "cpu"):
    """The trained ``nn.Module`` in ``folder``, in eval mode, after its sha256 check.

    Returns (model, card).
    """
    from fnnkit.variants import FeedForward

    folder = Path(folder)
    sweep_stale_temps(folder)
    card = read_model_card(folder)
    model = FeedForward(spec_from_card(card, folder / MODEL_CARD))
    state = load_state_dict(folder, card)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{folder / WEIGHTS_FILE} does not fit variant {card['variant']['name']}: {exc}") from None
    return model.to(device).eval(), card


def find_variant_dir(root: str | os.PathLike, variant: str, dataset: str | None = None) -> Path:
    """Folder of a trained variant; ``dataset=None`` picks the best dataset trained under ``root``."""
    if dataset in (None, "auto"):
        candidates = [d for d in trained_datasets(root) if (variant_dir(root, d, variant) / MODEL_CARD).exists()]
        if not candidates:
            raise ArtifactError(
                f"no trained variant {variant} under {Path(root)}; train it first: "
                f"fnnkit train --variant {variant} --artifacts {root}   (or `make train-all`)"
            )
        dataset = candidates[0]
    return variant_dir(root, dataset, variant)
