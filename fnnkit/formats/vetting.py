"""Vetting stamps: an ONNX file that ``fnnkit export`` vetted on this machine opens later without being
vetted again, so a process that only runs it imports neither ``onnx`` nor the record schemas.

Export runs the full vetting (``formats.onnx.vet_onnx``) on the bytes it wrote and records in the
file's ``export.json`` entry a stamp: HMAC-SHA256, keyed by a secret that never leaves this user's
cache (``key_path``), over the vetting rules' version, the format, the variant and the sha256 of the
file and of the weights it was made from. A loader that finds a stamp it can recompute knows those
exact bytes passed these rules here. A stamp cannot be written without the key: a folder copied from
elsewhere, an entry edited by hand (new sha256, ``vetted`` added or kept), other rules, another
variant or format, an unreadable or loosely permissioned key: every one of them fails ``holds`` and is
vetted in full, as if no stamp were there.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import stat
from pathlib import Path

RULES = "fnnkit.onnx-vet/1"  # bump when vet_onnx's rules change: older stamps then vouch for nothing
KEY_BYTES = 32


def key_path() -> Path:
    return Path.home() / ".cache" / "fnnkit" / "vetting.key"


def stamp(format: str, variant: str, sha256: str, source_sha256: str) -> str | None:
    """The stamp for bytes that just passed the vetting; None when no key can be kept here (loads then vet)."""
    key = _read_key() or _create_key()
    return None if key is None else _mac(key, format, variant, sha256, source_sha256)


def holds(stamp: object, format: str, variant: object, sha256: object, source_sha256: object) -> bool:
    """Whether ``stamp`` is this machine's stamp for exactly these values (any other type: False)."""
    fields = (stamp, variant, sha256, source_sha256)
    if not all(type(v) is str and 0 < len(v) <= 64 for v in fields):
        return False
    key = _read_key()
    return key is not None and hmac.compare_digest(stamp, _mac(key, format, variant, sha256, source_sha256))


def _mac(key: bytes, *fields: str) -> str:
    return hmac.new(key, "\n".join((RULES, *fields)).encode(), hashlib.sha256).hexdigest()


def _read_key(path: Path | None = None) -> bytes | None:
    """The key, only from a regular file (no symlink) of this user, unreadable and unwritable by others."""
    path = path or key_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        if info.st_size != KEY_BYTES:
            return None
        key = f.read(KEY_BYTES + 1)
    return key if len(key) == KEY_BYTES else None


def _create_key() -> bytes | None:
    """A new random key, written whole under a temporary name and linked into place (never replacing one
    another process linked first: then that one is read)."""
    path = key_path()
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    return _read_key(path)
