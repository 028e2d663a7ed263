"""Paths a user gives become absolute here, once; below that line no code sees a relative path.

Why: fnnkit's children (bench workers, cold-start probes) run in a private working directory,
and Ray replicas in their own; a relative ``artifacts`` means another folder there. So the CLI
(``fnnkit.cli.options``) and the Python entry points (``fnnkit.load``, ``BenchConfig``) pass every
path through ``user_path``, and the layout functions that everything else goes through call
``require_absolute``, so a relative path that slips past the boundary fails loudly, at once.

``user_path`` resolves the folders above the last name (``..`` and symlinks, the kernel's way)
but keeps the last name as given: a symlink the user named is still seen, and refused, by the
readers that read regular files only.
"""

from __future__ import annotations

import os
from pathlib import Path

from fnnkit.errors import ConfigError


def user_path(value: str | os.PathLike, flag: str, *, folder: bool = False) -> Path:
    """``value`` as an absolute path (``~`` expanded), or one ConfigError line naming ``flag``.

    ``folder``: the path names a folder; if something exists there it must be one (or a symlink to one).
    Whether it must exist, or be writable, is the command's business: train creates its folder.
    """
    text = os.fspath(value)
    if isinstance(text, bytes) or not text.strip():
        raise ConfigError(f"{flag} is empty; give a path")
    if "\0" in text:
        raise ConfigError(f"{flag} {text!r} contains a NUL byte; give a path")
    try:
        given = Path(text).expanduser()
        keep_last = given.name not in ("", ".", "..")  # `..` or `.` last: nothing to keep, resolve it all
        path = given.absolute().parent.resolve() / given.name if keep_last else given.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unknown ~user, a vanished working directory
        raise ConfigError(f"{flag} {text}: cannot make it an absolute path ({exc}); give another path") from None
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is not a folder; give a folder")
    return path


def require_absolute(path: str | os.PathLike, what: str) -> Path:
    """The guard below the boundary: a relative ``path`` here is a bug in fnnkit, not a user mistake.

    A ValueError (a traceback, deliberately loud), not an FnnkitError: the user did nothing wrong.
    Python callers pass ``Path(...).resolve()`` or go through ``user_path``.
    """
    path = Path(path)
    if not path.is_absolute():
        raise ValueError(
            f"{what} {str(path)!r} is relative; fnnkit resolves paths once, where they enter "
            "(fnnkit.paths.user_path), and below that only absolute paths are used"
        )
    return path
