"""Atomic writes: one file (``atomic_write``) or several that belong together (``commit_files``).

Every write goes to a uniquely named temporary file (or staging folder) beside its target, is
fsynced, then renamed or swapped into place, so a crash, Ctrl-C or a full disk never leaves a
half-written file, and a reader never sees weights beside the card of other weights.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnnkit.errors import ArtifactError
from fnnkit.store.io import ensure_writable_dir, refuse_non_regular
from fnnkit.store.locks import recover_swaps, sweep_stale_temps


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
    fsync_dir(path.parent)
    return path


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def json_bytes(payload: Any) -> bytes:
    """How fnnkit writes a record: indented, finite (NaN/Infinity refused with a ValueError), one final newline."""
    return (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode()


def atomic_write_json(path: str | os.PathLike, payload: Any) -> Path:
    return atomic_write_bytes(path, json_bytes(payload))


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


def commit_files(
    folder: str | os.PathLike,
    writers: dict[str, Callable[[Path], None]],
    *,
    carry: bool = True,
    before_swap: Callable[[Path], None] | None = None,
) -> Path:
    """Replace several files of ``folder`` as one unit: a reader sees all old files or all new ones.

    The new folder is built as a hidden sibling (unchanged files hard-linked when ``carry``, each new
    file made by its writer, all fsynced), then swapped with the live folder by one
    ``renameat2(RENAME_EXCHANGE)``, and the old one removed. No moment exists where the folder holds
    a mix; a crash before the swap leaves the old folder whole and a staging sibling the sweeper
    removes by pid, a crash after it leaves the new one whole. Where the filesystem cannot exchange,
    see ``_swap_by_two_renames``. A writer's name may hold one ``/`` (``1/model.onnx``: Triton's
    version folder); ``carry=False`` replaces the folder whole (nothing old is kept). ``before_swap`` checks
    the staged folder: what it raises leaves the live folder as it was.
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
            fsync_dir(sub)
        if before_swap is not None:
            before_swap(stage)
        _crash_point("staged")
        if not folder.exists():
            os.rename(stage, folder)
        elif not _exchange(stage, folder):
            _swap_by_two_renames(stage, folder)
        fsync_dir(parent)
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
    gets "not trained"; nothing is mixed); a crash there is repaired by ``locks.recover_swaps``, which
    the next commit runs: the folder missing and an ``.old-<dead pid>`` sibling present -> put it back.
    """
    aside = folder.with_name(f".{folder.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(folder, aside)
    _crash_point("aside")
    os.rename(stage, folder)
    os.rename(aside, stage)  # so the caller removes the old folder under the stage name
