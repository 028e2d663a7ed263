"""Where artifacts live, how they are written (atomically) and read back (verified).

Layout: ``<root>/<dataset>/<variant>/`` holds ``model.safetensors`` + ``model.json`` and
the exported files. Every write goes to a uniquely named temporary file in the same folder
and is renamed into place, under a per-folder lock, so a crash, Ctrl-C or a second process
never leaves a half-written or mismatched artifact. Every read checks the sha256 recorded
at write time, on the very bytes it then deserialises (no check-then-reopen race).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from fnnkit.errors import ArtifactError, ConfigError, IntegrityError, WorseModel
from fnnkit.paths import require_absolute

WEIGHTS_FILE = "model.safetensors"
MODEL_CARD = "model.json"
EXPORT_MANIFEST = "export.json"
MODEL_SCHEMA = "fnnkit.model/1"
DATASET_PREFERENCE = ("mnist", "fashion-mnist", "mnist-sample")  # best data first

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?:tmp|stage)-(?P<pid>\d{1,10})-[0-9a-f]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PID_MAX = 2**22  # Linux's pid_max ceiling: a larger "pid" in a temp name is not a live writer

# every read is bounded by the size its kind of file may have (a symlink to /dev/zero must not fill memory)
MAX_RECORD_BYTES = 4 << 20  # model.json / export.json / bench baselines: a few KB in practice
MAX_JSON_DEPTH = 16  # records nest 4 deep; a deeper document is not one of ours
MAX_EXPORT_BYTES = 1 << 30  # an exported file of the largest allowed variant fits with a wide margin
HIDDEN_LAYERS_MAX, HIDDEN_DIM_MAX = 16, 2048  # bounds on any card, checked before anything is built from it
CHANCE_FACTOR = 1.5  # under 1.5x guessing (15% for ten classes) a network learned nothing; MNIST's top digit: 11.35%
FAR_BELOW_POINTS = 10.0  # test-accuracy points a new run may lose against the model it replaces without being asked


def variant_dir(root: str | os.PathLike, dataset: str, variant: str) -> Path:
    """The layout rule; ``root`` must be absolute (``fnnkit.paths``): children run in other folders."""
    return require_absolute(root, "artifacts root") / dataset / variant


def trained_datasets(root: str | os.PathLike) -> list[str]:
    """Datasets with at least one trained variant under ``root``, best data first."""
    root = require_absolute(root, "artifacts root")
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
    if not 0 < pid < _PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
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
        if not match or _pid_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):  # gone already, or a read-only folder: leave it to a writer
            if entry.is_dir() and not entry.is_symlink():
                if ".stage-" not in entry.name:
                    continue  # a directory named like a temp file is not ours to remove
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def lock_path(folder: str | os.PathLike) -> Path:
    """``<parent>/.<name>.lock``: beside the folder, because a commit swaps the folder itself."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on a folder: two processes saving into it take turns."""
    folder = Path(folder)
    ensure_writable_dir(folder if folder.is_dir() else folder.parent)  # a missing folder: a commit creates it whole
    fd = os.open(lock_path(folder), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        recover_swaps(folder.parent)  # holding the lock: whatever a dead writer left here is ours to tidy
        sweep_stale_temps(folder.parent)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_writable_dir(folder: str | os.PathLike, flag: str = "--artifacts") -> Path:
    """``folder``, created if missing and writable, or one line naming ``flag``, the option it came from."""
    folder = Path(folder)
    what = "artifacts folder" if flag == "--artifacts" else f"{flag} folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(
            f"cannot create {what} {folder}: {exc.strerror}; choose another with {flag} or fix its permissions"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArtifactError(f"{what} {folder} is not writable; choose another with {flag} or fix its permissions")
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
    refuse_non_regular(path)
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


def refuse_non_regular(path: str | os.PathLike, flag: str | None = None) -> Path:
    """Refuse to replace anything but a regular file (a device, FIFO, folder or symlink stays as it is).

    ``flag`` names the option the path came from, for a user-given output path.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise ArtifactError(f"cannot inspect {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        where = f"{flag} {path}" if flag else str(path)
        error = ConfigError if flag else ArtifactError
        raise error(f"{where} is {kind}; fnnkit only replaces regular files: give a file path")
    return path


def check_output_path(path: str | os.PathLike, flag: str) -> Path:
    """A user-given output path, checked before any work: a regular file or nothing, in a writable folder."""
    path = refuse_non_regular(path, flag)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: folder {parent} is not writable; choose another path")
    return path


@contextlib.contextmanager
def open_regular(path: str | os.PathLike, limit: int, what: str = "file") -> Iterator[BinaryIO]:
    """A binary file object on a regular file of at most ``limit`` bytes, checked on the opened descriptor.

    ``O_NOFOLLOW`` refuses a symlink, ``O_NONBLOCK`` keeps a FIFO from hanging the open, and the
    ``fstat`` of the descriptor refuses devices, FIFOs, folders and oversized files before a byte is read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ArtifactError(f"{what} {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArtifactError(
                f"{what} {path} is a symlink (to {os.readlink(path)}); fnnkit reads regular files only"
            ) from None
        raise ArtifactError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"{what} {path} is not a regular file; fnnkit reads regular files only")
        if info.st_size > limit:
            raise ArtifactError(f"{what} {path} has {info.st_size} bytes, more than such a file may have ({limit})")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle


def read_regular(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``open_regular``); at most ``limit + 1``
    bytes are read, so a file growing under us cannot fill memory either."""
    with open_regular(path, limit, what) as handle:
        try:  # read() allocates what it is asked for: ask for the file's size (+1 to see it grow), not the limit
            data = handle.read(min(limit, os.fstat(handle.fileno()).st_size) + 1)
        except OSError as exc:
            raise ArtifactError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise ArtifactError(f"{what} {path} grew past {limit} bytes while being read; refusing it")
    return data


def parse_json(data: bytes, path: str | os.PathLike, what: str) -> dict:
    """A JSON object from bytes, depth-limited; every failure is an ArtifactError naming the file."""
    try:
        payload = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        _check_depth(payload, path, what)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ArtifactError(f"{what} {path} is not valid JSON ({exc}); re-create it") from None
    except RecursionError:
        raise ArtifactError(f"{what} {path} nests deeper than {MAX_JSON_DEPTH} levels; not an fnnkit record") from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{what} {path} must hold a JSON object, found {type(payload).__name__}")
    return payload


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number fnnkit writes")


def _check_depth(payload: Any, path: str | os.PathLike, what: str) -> None:
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise RecursionError
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def read_json(path: str | os.PathLike, *, what: str = "JSON file", limit: int = MAX_RECORD_BYTES) -> dict:
    """Parse a JSON object from a bounded regular file, turning every failure into an ArtifactError."""
    return parse_json(read_regular(path, limit, what), path, what)


def read_verified(path: str | os.PathLike, expected_sha256: str, limit: int = MAX_EXPORT_BYTES) -> bytes:
    """The file's bytes, only if it is a regular file (no symlink) hashing to ``expected_sha256``."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ArtifactError(f"{path} is missing; re-create it (see `fnnkit --help`)")
    data = read_regular(path, limit, "artifact")
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{path} has sha256 {actual[:16]}..., but {expected_sha256[:16]}... was recorded when fnnkit "
            "wrote it: the file was changed or damaged. Refusing to load it; re-create it with fnnkit."
        )
    return data


def train_command(root: str | os.PathLike, variants: str, dataset: str | None = None) -> str:
    """The command that (re-)trains ``variants`` under ``root``: every "train it first" and "re-create it
    with" hint names it through here (export hints: ``fnnkit.export.core.export_command``)."""
    return f"fnnkit train --variant {variants}{f' --dataset {dataset}' if dataset else ''} --artifacts {root}"


def retrain_hint(folder: str | os.PathLike) -> str:
    """The "re-create it with" hint for a damaged file in a trained variant's folder."""
    folder = Path(folder)
    return f"re-create it with: {train_command(folder.parent.parent, folder.name, folder.parent.name)}"


def read_model_card(folder: str | os.PathLike) -> dict:
    """``model.json`` of a trained variant, bounded and schema-checked before anything uses it."""
    path = Path(folder) / MODEL_CARD
    if not path.exists() and not path.is_symlink():
        raise ArtifactError(
            f"no trained model in {Path(folder)} ({MODEL_CARD} missing); "
            f"train it first: {train_command(Path(folder).parent.parent, Path(folder).name, Path(folder).parent.name)}"
        )
    card = read_json(path, what="model card")
    try:
        validate_card(card)
    except ValueError as exc:
        raise ArtifactError(f"model card {path}: {exc}; {retrain_hint(folder)}") from None
    return card


def validate_card(card: dict) -> None:
    """The model card's schema: types, bounds and registry names (raises ValueError saying which field)."""
    from fnnkit.variants import VARIANTS

    missing = [f for f in ("schema", "variant", "dataset", "weights", "test_accuracy", "history") if f not in card]
    if missing:
        raise ValueError(f"lacks field(s) {', '.join(missing)}")
    if card["schema"] != MODEL_SCHEMA:
        raise ValueError(f"has schema {str(card['schema'])[:40]!r}, this fnnkit reads {MODEL_SCHEMA!r}")
    variant = _field(card, "variant", dict)
    name = _field(variant, "name", str, "variant.name")
    if name not in VARIANTS:
        raise ValueError(f"variant.name {name[:20]!r} is not one of {', '.join(VARIANTS)}")
    spec = VARIANTS[name]
    layers = _bounded_int(variant, "hidden_layers", 1, HIDDEN_LAYERS_MAX)
    dim = _bounded_int(variant, "hidden_dim", 1, HIDDEN_DIM_MAX)
    activation = _field(variant, "activation", str, "variant.activation")
    if (activation, layers, dim) != (spec.activation, spec.hidden_layers, spec.hidden_dim):
        raise ValueError(
            f"variant {name} is {spec.description}, but the card says {layers} hidden {activation[:20]} x{dim}"
        )
    dataset = _field(card, "dataset", dict)
    if not _NAME_RE.match(_field(dataset, "name", str, "dataset.name")):
        raise ValueError("dataset.name must be a short name of letters, digits, '-', '_' or '.'")
    if "test_size" in dataset:
        _bounded_int(dataset, "test_size", 1, 10**8, "dataset.")
    accuracy = card["test_accuracy"]
    if isinstance(accuracy, bool) or not isinstance(accuracy, int | float) or not 0 <= accuracy <= 100:
        raise ValueError("test_accuracy must be a number from 0 to 100")
    weights = _field(card, "weights", dict)
    if weights.get("file") != WEIGHTS_FILE:
        raise ValueError(f"weights.file must be {WEIGHTS_FILE!r}")
    if not _SHA256_RE.match(_field(weights, "sha256", str, "weights.sha256")):
        raise ValueError("weights.sha256 must be 64 lowercase hex digits")
    if "bytes" in weights:
        _bounded_int(weights, "bytes", 1, max_weights_bytes(spec), "weights.")
    if not isinstance(card["history"], list | dict):
        raise ValueError("history must be a list or an object")


def validate_export_entry(entry: Any) -> None:
    """One ``export.json`` format entry: the fields loaders and ``verify`` rely on, typed and bounded."""
    if not isinstance(entry, dict):
        raise ValueError(f"must be an object, found {type(entry).__name__}")
    name = _field(entry, "file", str)
    if not _NAME_RE.match(name):
        raise ValueError("has a 'file' that is not a plain file name")
    for key in ("sha256", "source_sha256"):
        if not _SHA256_RE.match(_field(entry, key, str)):
            raise ValueError(f"field {key!r} must be 64 lowercase hex digits")
    _bounded_int(entry, "bytes", 1, MAX_EXPORT_BYTES, "")
    seconds = entry.get("export_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e7:
        raise ValueError("field 'export_seconds' must be a number of seconds")
    if _field(entry, "device", str) not in ("cpu", "cuda"):
        raise ValueError("field 'device' must be 'cpu' or 'cuda'")
    if not isinstance(_field(entry, "parity", dict).get("passed"), bool):
        raise ValueError("field 'parity' must record whether parity 'passed'")
    _field(entry, "versions", dict)


def _field(record: dict, key: str, kind: type, label: str | None = None) -> Any:
    value = record.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"field {label or key!r} must be a {kind.__name__}, found {type(value).__name__}")
    return value


def _bounded_int(record: dict, key: str, low: int, high: int, prefix: str = "variant.") -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"field {prefix}{key} must be an integer from {low} to {high}, found {str(value)[:40]}")
    return value


def max_weights_bytes(spec) -> int:
    """The most bytes a safetensors file of ``spec`` may have: its float32 parameters plus a header, doubled,
    so a file of the wrong dtype still reaches the header check, which names the dtype."""
    return 2 * (4 * spec.num_parameters + (1 << 16))


def save_trained(folder: str | os.PathLike, state_dict: dict, card: dict, *, replace_worse: bool = False) -> Path:
    """Write weights and the card that vouches for them as one unit (``commit_files``).

    Non-finite weights or card numbers are refused before anything is written, so a diverged
    training leaves the previous model as it was. So is a run that would replace a model with one
    at chance level or far below it (``refuse_worse``), unless ``replace_worse``.
    """
    import torch
    from safetensors.torch import save as safetensors_save

    folder = ensure_writable_dir(folder)
    bad = [name for name, t in state_dict.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ArtifactError(
            f"the trained weights hold NaN or infinity ({', '.join(bad)}): training diverged; nothing was "
            f"written and the previous model in {folder} is unchanged. Try a smaller --lr"
        )
    metadata = {"variant": card["variant"]["name"], "dataset": card["dataset"]["name"]}
    data = canonical_safetensors(
        safetensors_save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, metadata=metadata)
    )
    card = {**card, "weights": {"file": WEIGHTS_FILE, "sha256": sha256_bytes(data), "bytes": len(data)}}
    try:
        text = (json.dumps(card, indent=2, allow_nan=False) + "\n").encode()
    except ValueError:
        raise ArtifactError(
            f"the model card for {folder} holds NaN or infinity (training diverged); nothing was written"
        ) from None
    with folder_lock(folder):
        if not replace_worse:
            refuse_worse(folder, card)
        commit_files(folder, {WEIGHTS_FILE: lambda p: p.write_bytes(data), MODEL_CARD: lambda p: p.write_bytes(text)})
    return folder


def canonical_safetensors(data: bytes) -> bytes:
    """The same tensors always give the same bytes: safetensors writes its metadata map in hash order, which
    varies from process to process, so the header is rewritten with sorted keys (a safetensors reader accepts
    any order and the space padding). Same seed, same weights, same sha256: exports stay current."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.dumps(json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data section stays 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(header)) + header + data[8 + length :]


def refuse_worse(folder: Path, card: dict) -> None:
    """WorseModel if ``card``'s run would replace the model in ``folder`` with one at chance level (under
    ``CHANCE_FACTOR`` x guessing) or more than ``FAR_BELOW_POINTS`` below it. Nothing to replace, or a
    damaged card there, replaces nothing good: the run is saved."""
    try:
        old = read_model_card(folder)
    except ArtifactError:
        return
    new_accuracy, old_accuracy = float(card["test_accuracy"]), float(old["test_accuracy"])
    chance = 100.0 / max(1, len(card["dataset"].get("classes") or range(10)))
    if new_accuracy < CHANCE_FACTOR * chance:
        why = f"ended at chance level ({new_accuracy:.2f}% test accuracy; guessing scores {chance:.0f}%)"
    elif new_accuracy < old_accuracy - FAR_BELOW_POINTS:
        lost = old_accuracy - new_accuracy
        why = f"ended at {new_accuracy:.2f}% test accuracy, {lost:.1f} points below the model it would replace"
    else:
        return
    raise WorseModel(
        f"training {card['variant']['name']} {why}: nothing was written, and the model in {folder} "
        f"({old_accuracy:.2f}%) is kept. Check --lr and --iters; to keep this run anyway, add --replace-worse"
    )


# --------------------------------------------------------------------------- multi-file commit

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (``renameat2(RENAME_EXCHANGE)``); False where the kernel/fs cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _crash_point(step: str) -> None:
    """Test hook: ``FNNKIT_CRASH_AT=<step>`` kills this process there, exactly as kill -9 would."""
    if os.environ.get("FNNKIT_CRASH_AT") == step:
        os.kill(os.getpid(), 9)


def commit_files(folder: str | os.PathLike, writers: dict[str, Callable[[Path], None]], *, carry: bool = True) -> Path:
    """Replace several files of ``folder`` as one unit: a reader sees all old files or all new ones.

    The new folder is built as a hidden sibling (unchanged files hard-linked when ``carry``, each new
    file made by its writer, all fsynced), then swapped with the live folder by one
    ``renameat2(RENAME_EXCHANGE)``, and the old one removed. No moment exists where the folder holds
    a mix; a crash before the swap leaves the old folder whole and a staging sibling the sweeper
    removes by pid, a crash after it leaves the new one whole. Where the filesystem cannot exchange,
    see ``_swap_by_two_renames``. A writer's name may hold one ``/`` (``1/model.onnx``: Triton's
    version folder); ``carry=False`` replaces the folder whole (nothing old is kept).
    Call under ``folder_lock`` (the lock file lives beside the folder, so the swap keeps it).
    """
    folder = Path(folder)
    parent = ensure_writable_dir(folder.parent)
    recover_swaps(parent)
    sweep_stale_temps(parent)
    stage = parent / f".{folder.name}.stage-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        stage.mkdir()
        if carry and folder.is_dir():
            for entry in os.scandir(folder):
                if entry.name in writers or entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue  # temps, old locks, symlinks and folders are not fnnkit's files: not carried over
                os.link(entry.path, stage / entry.name)
        for name, write in writers.items():
            (stage / name).parent.mkdir(exist_ok=True)
            write(stage / name)
            with open(stage / name, "rb+") as f:
                os.fsync(f.fileno())
        for sub in {(stage / name).parent for name in writers}:
            _fsync_dir(sub)
        _crash_point("staged")
        if not folder.exists():
            os.rename(stage, folder)
        elif not _exchange(stage, folder):
            _swap_by_two_renames(stage, folder)
        _fsync_dir(parent)
        _crash_point("swapped")
    except BaseException as exc:
        if stage.is_dir() and not stage.is_symlink():
            shutil.rmtree(stage, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ArtifactError(f"could not write into {folder}: {exc.strerror or exc}; nothing was changed") from exc
        raise
    shutil.rmtree(stage, ignore_errors=True)  # after the swap: the old folder
    return folder


def _swap_by_two_renames(stage: Path, folder: Path) -> None:
    """Fallback where RENAME_EXCHANGE is unsupported (EINVAL/ENOSYS: some network filesystems).

    Old folder aside, new one in. Between the two renames the folder is briefly absent (a reader
    gets "not trained"; nothing is mixed); a crash there is repaired by ``recover_swaps``, which the
    next commit runs: the folder missing and an ``.old-<dead pid>`` sibling present -> put it back.
    """
    aside = folder.with_name(f".{folder.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(folder, aside)
    _crash_point("aside")
    os.rename(stage, folder)
    os.rename(aside, stage)  # so the caller removes the old folder under the stage name


_ASIDE_RE = re.compile(r"^\.(?P<name>.+)\.old-(?P<pid>\d{1,10})(?:-[0-9a-f]+)?$")  # no suffix: older Triton exports


def recover_swaps(parent: str | os.PathLike) -> list[Path]:
    """Repair what a writer killed inside a two-rename swap left; returns the folders put back.

    Killed between the renames: the folder is missing (or an empty folder a later command created
    while looking for it) and the old one lies aside -> put it back. Killed after the second
    rename: the folder is the complete new one -> the old one aside is removed. A live writer's
    aside folder is left alone.
    """
    parent, restored = Path(parent), []
    if not parent.is_dir():
        return restored
    for entry in parent.iterdir():
        match = _ASIDE_RE.match(entry.name)
        if not match or _pid_alive(int(match["pid"])) or entry.is_symlink() or not entry.is_dir():
            continue
        target = parent / match["name"]
        with contextlib.suppress(OSError):  # a read-only folder or a racing writer: the next writer retries
            if not target.is_symlink() and target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            if not target.exists() and not target.is_symlink():
                os.rename(entry, target)
                restored.append(target)
            elif target.is_dir() and not target.is_symlink():
                shutil.rmtree(entry)  # the swap finished: what lies aside is the replaced folder
    return restored


def load_state_dict(folder: str | os.PathLike, card: dict | None = None) -> dict:
    """Weights of a trained variant, after their sha256 matched the card's and their header passed
    the checks `fnnkit verify` runs (lengths, offsets, the variant's tensor names, dtypes, shapes)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as safetensors_load

    from fnnkit.safetensors_vet import vet_safetensors

    folder = Path(folder)
    card = card or read_model_card(folder)
    path = folder / WEIGHTS_FILE
    spec = spec_from_card(card, folder / MODEL_CARD)
    data = read_verified(path, card["weights"]["sha256"], limit=max_weights_bytes(spec))
    vet_safetensors(data, path, spec)
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
    card, state = _card_and_weights(folder)
    model = FeedForward(spec_from_card(card, folder / MODEL_CARD))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{folder / WEIGHTS_FILE} does not fit variant {card['variant']['name']}: {exc}") from None
    return model.to(device).eval(), card


def _card_and_weights(folder: Path) -> tuple[dict, dict]:
    """Card and weights of one commit: a reader that read the card just before a save swapped the folder
    meets the new weights' sha256; it reads the (new) card again once instead of calling them damaged."""
    card = read_model_card(folder)
    try:
        return card, load_state_dict(folder, card)
    except IntegrityError:
        fresh = read_model_card(folder)
        if fresh == card:
            raise
        return fresh, load_state_dict(folder, fresh)


def find_variant_dir(root: str | os.PathLike, variant: str, dataset: str | None = None) -> Path:
    """Folder of a trained variant; ``dataset=None`` picks the best dataset trained under ``root``."""
    require_absolute(root, "artifacts root")
    if dataset in (None, "auto"):
        candidates = [d for d in trained_datasets(root) if (variant_dir(root, d, variant) / MODEL_CARD).exists()]
        if not candidates:
            raise ArtifactError(
                f"no trained variant {variant} under {Path(root)}; train it first: "
                f"{train_command(root, variant)}   (or `make train-all`)"
            )
        dataset = candidates[0]
    return variant_dir(root, dataset, variant)
