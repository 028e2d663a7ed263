"""Bounded reading, and the checks on a path before fnnkit writes there: the one way fnnkit opens a file
it did not just create (records, weights, exports, datasets, predict inputs).

``open_regular`` refuses, on the opened descriptor, anything but a regular file within a size limit,
so a symlink to /dev/zero, a FIFO or a 100 GB sparse file costs nothing; ``read_json`` adds a depth
limit and refuses NaN/Infinity, so a record is plain, finite JSON before its schema is checked.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from fnnkit.errors import ArtifactError, ConfigError, FnnkitError, IntegrityError

# every read is bounded by the size its kind of file may have (a symlink to /dev/zero must not fill memory)
MAX_RECORD_BYTES = 4 << 20  # model.json / export.json / bench baselines: a few KB in practice
MAX_JSON_DEPTH = 16  # records nest 4 deep; a deeper document is not one of ours
MAX_EXPORT_BYTES = 1 << 30  # an exported file of the largest allowed variant fits with a wide margin


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def open_regular(
    path: str | os.PathLike,
    limit: int | None,
    what: str = "file",
    *,
    error: type[FnnkitError] = ArtifactError,
    follow_symlinks: bool = False,
) -> Iterator[BinaryIO]:
    """A blocking binary file object on a regular file of at most ``limit`` bytes (None: any size; the
    caller bounds what it reads), checked on the opened descriptor; every refusal is one ``error`` line.

    ``O_NOFOLLOW`` refuses a symlink (fnnkit never writes one into an artifact; a user's own dataset or
    input file may be one: ``follow_symlinks``), ``O_NONBLOCK`` keeps a FIFO from hanging the open, and
    the ``fstat`` of the descriptor refuses devices, FIFOs, folders and oversized files before a byte is read.
    """
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise error(
                f"{what} {path} is a symlink (to {os.readlink(path)}); fnnkit reads regular files only"
            ) from None
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file; fnnkit reads regular files only")
        if limit is not None and info.st_size > limit:
            raise error(f"{what} {path} has {info.st_size} bytes, more than such a file may have ({limit})")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle


def read_regular(
    path: str | os.PathLike, limit: int, what: str = "file", *, error: type[FnnkitError] = ArtifactError
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``open_regular``); at most ``limit + 1``
    bytes are read, so a file growing under us cannot fill memory either."""
    with open_regular(path, limit, what, error=error) as handle:
        try:  # read() allocates what it is asked for: ask for the file's size (+1 to see it grow), not the limit
            data = handle.read(min(limit, os.fstat(handle.fileno()).st_size) + 1)
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} {path} grew past {limit} bytes while being read; refusing it")
    return data


def parse_json(data: bytes, path: str | os.PathLike, what: str) -> dict:
    """A JSON object from bytes, depth-limited and finite; every failure is an ArtifactError naming the file."""
    try:
        payload = json.loads(data.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
        _check_depth(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ArtifactError(f"{what} {path} is not valid JSON ({exc}); re-create it") from None
    except RecursionError:
        raise ArtifactError(f"{what} {path} nests deeper than {MAX_JSON_DEPTH} levels; not an fnnkit record") from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{what} {path} must hold a JSON object, found {type(payload).__name__}")
    return payload


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number fnnkit writes")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf without ever spelling "Infinity"
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def _check_depth(payload: Any) -> None:
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


def read_verified(
    path: str | os.PathLike, expected_sha256: str, limit: int = MAX_EXPORT_BYTES, hint: str = ""
) -> bytes:
    """The file's bytes, only if it is a regular file (no symlink) hashing to ``expected_sha256``;
    ``hint``: the command that re-creates it (``Artifact``'s), for a missing or changed file."""
    path = Path(path)
    hint = hint or "re-create it with fnnkit"
    if not os.path.lexists(path):
        raise ArtifactError(f"{path} is missing; {hint}")
    data = read_regular(path, limit, "artifact")
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{path} has sha256 {actual[:16]}..., but {expected_sha256[:16]}... was recorded when fnnkit "
            f"wrote it: the file was changed or damaged. Refusing to load it; {hint}."
        )
    return data


# --------------------------------------------------------------------------- before a write


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
