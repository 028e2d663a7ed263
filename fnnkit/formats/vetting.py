"""Vetting stamps: an ONNX file that ``fnnkit export`` vetted on this machine opens later without being
vetted again, so a process that only runs it imports neither ``onnx`` nor the record schemas.

Export runs the full vetting (``formats.onnx.vet_onnx``) on the bytes it wrote and records in the
file's ``export.json`` entry a stamp: HMAC-SHA256, keyed by a secret that never leaves this user's
cache (``key_path``), over the vetting rules' version, the format, the model card, export.json's head
and the entry itself (the file's sha256, the weights it was made from, its parity). A loader that
finds a stamp it can recompute knows that these exact records, schema-checked when export wrote
them, vouch for bytes that passed these rules here; it checks the bytes' sha256 and skips the rest.
A stamp cannot be written without the key: a folder copied from elsewhere, any record edited by
hand (a new sha256, ``vetted`` added or kept, a retrained model), other rules, another format, an
unreadable or loosely permissioned key: every one fails ``holds`` and goes through the full checks
(record schemas and vetting), as if no stamp were there.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

RULES = "fnnkit.onnx-vet/1"  # bump when vet_onnx's rules change: older stamps then vouch for nothing
KEY_BYTES = 32


def key_path() -> Path:
    return Path.home() / ".cache" / "fnnkit" / "vetting.key"


def stamp(format: str, card: dict, manifest: dict, entry: dict) -> str | None:
    """The stamp for an entry whose bytes just passed the vetting; None when no key can be kept here (loads
    then vet in full)."""
    key = _read_key() or _create_key()
    return None if key is None else _mac(key, format, card, manifest, entry)


def holds(stamp: object, format: str, card: object, manifest: object, entry: object) -> bool:
    """Whether ``stamp`` is this machine's stamp for exactly these records, as JSON read back: the model card,
    export.json's head (every field but the entries) and the format's entry, which names the file's sha256 and
    the weights it was made from (its ``vetted`` field aside). Anything else: False."""
    if type(stamp) is not str or len(stamp) != 64 or not all(type(r) is dict for r in (card, manifest, entry)):
        return False
    key = _read_key()
    if key is None:
        return False
    try:
        expected = _mac(key, format, card, manifest, entry)
    except (TypeError, ValueError):  # not JSON after all
        return False
    return hmac.compare_digest(stamp, expected)


def _mac(key: bytes, format: str, card: dict, manifest: dict, entry: dict) -> str:
    head = {name: value for name, value in manifest.items() if name != "formats"}
    body = {name: value for name, value in entry.items() if name != "vetted"}
    text = json.dumps([RULES, format, card, head, body], sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


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
