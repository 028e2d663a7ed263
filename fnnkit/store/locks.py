"""Who may write a folder now, and tidying what writers that died left behind.

A writer takes ``folder_lock`` (an advisory lock file beside the folder, because a commit swaps
the folder itself); holding it, it removes the temp files and staging folders of dead writers
(named with their pid) and repairs a two-rename swap a writer was killed inside.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from fnnkit.store.io import ensure_writable_dir

TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?:tmp|stage)-(?P<pid>\d{1,10})-[0-9a-f]+$")
ASIDE_RE = re.compile(r"^\.(?P<name>.+)\.old-(?P<pid>\d{1,10})(?:-[0-9a-f]+)?$")  # no suffix: older Triton exports
_PID_MAX = 2**22  # Linux's pid_max ceiling: a larger "pid" in a temp name is not a live writer


def pid_alive(pid: int) -> bool:
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
        match = TEMP_RE.match(entry.name)
        if not match or pid_alive(int(match["pid"])):
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


def recover_swaps(parent: str | os.PathLike) -> list[Path]:
    """Repair what a writer killed inside a two-rename swap (``commit._swap_by_two_renames``) left;
    returns the folders put back.

    Killed between the renames: the folder is missing (or an empty folder a later command created
    while looking for it) and the old one lies aside -> put it back. Killed after the second
    rename: the folder is the complete new one -> the old one aside is removed. A live writer's
    aside folder is left alone.
    """
    parent, restored = Path(parent), []
    if not parent.is_dir():
        return restored
    for entry in parent.iterdir():
        match = ASIDE_RE.match(entry.name)
        if not match or pid_alive(int(match["pid"])) or entry.is_symlink() or not entry.is_dir():
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
