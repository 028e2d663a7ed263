"""Damaged weights: truncated and bit-flipped model.safetensors, a header length past the end of the file,
an oversized header, the wrong dtype: a clear error naming the file, and no allocation sized by
what the file claims (proved in a child process whose address space is capped).

A damaged file whose record still holds the old sha256 is refused by the hash (the bit-flip
case of tests/test_artifacts.py); here the record is re-written to match, so the header checks
themselves must catch the damage, in the loader and in ``fnnkit verify`` alike.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from fnnkit.errors import ArtifactError, IntegrityError
from fnnkit.store import WEIGHTS_FILE, load_trained
from fnnkit.verify import MAX_HEADER_BYTES, verify

from .helpers import last_json, problems, rerecord_weights, run_python


def header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flip_shape_digit(data: bytes) -> bytes:
    """One bit flipped inside the JSON header: the first layer's 784 inputs read as 785."""
    at = data.index(b"784", 8, 8 + header_length(data)) + 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def length_past_eof(data: bytes) -> bytes:
    return struct.pack("<Q", 1 << 62) + data[8:]  # 4 EiB: a reader that trusted it would try to allocate that


def float64_weights(data: bytes) -> bytes:
    from safetensors.torch import load, save

    return save({name: tensor.double() for name, tensor in load(data).items()})


def write_oversized(path: Path, claimed: int) -> None:
    """A sparse file long enough to hold the header it claims, so only the size cap can refuse it."""
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", claimed) + b"{")
        f.truncate(8 + claimed + 16)


DAMAGE = {  # name -> (rewrite the bytes, words the error must contain)
    "truncated": (truncate, "truncated"),
    "bit-flipped header": (flip_shape_digit, "needs"),
    "header length past end of file": (length_past_eof, "only"),
    "float64 instead of float32": (float64_weights, "F64"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_weights_with_forged_record_are_refused_naming_the_file(damage, variant):
    rewrite, words = DAMAGE[damage]
    path = variant / WEIGHTS_FILE
    path.write_bytes(rewrite(path.read_bytes()))
    rerecord_weights(variant)
    with pytest.raises(ArtifactError) as info:
        load_trained(variant)
    assert str(path) in str(info.value) and words in str(info.value), info.value
    found = problems(verify(variant), path)
    assert len(found) == 1 and str(path) in found[0] and words in found[0], found


def test_truncated_weights_with_their_old_record_fail_the_hash_too(variant):
    path = variant / WEIGHTS_FILE
    path.write_bytes(truncate(path.read_bytes()))
    with pytest.raises(IntegrityError, match="changed or damaged") as info:
        load_trained(variant)
    assert str(path) in str(info.value)
    checks = {c.check: c for c in verify(variant) if c.file == path}
    assert not checks["sha256"].ok and not checks["safetensors header"].ok


def test_oversized_header_is_refused_by_its_size(variant):
    path = variant / WEIGHTS_FILE
    write_oversized(path, MAX_HEADER_BYTES + 1)
    rerecord_weights(variant)
    refused = "exceeds the|more than such a file may have"  # the file's own bound now fires before the header's
    with pytest.raises(ArtifactError, match=refused) as info:
        load_trained(variant)
    assert str(path) in str(info.value)
    assert any(re.search(refused, p) for p in problems(verify(variant), path))


@pytest.mark.slow  # a child under a capped address space that imports torch: ~1.7 s
def test_no_allocation_follows_the_claimed_length(variant, tmp_path):
    """Under RLIMIT_AS = what the child already maps + 64 MiB, a 256 MiB allocation fails (the control),
    yet verify and the loader refuse a header claiming 4 EiB, and verify one claiming 256 MiB, cleanly."""
    path = variant / WEIGHTS_FILE
    path.write_bytes(length_past_eof(path.read_bytes()))
    rerecord_weights(variant)
    sparse = tmp_path / "oversized" / WEIGHTS_FILE
    sparse.parent.mkdir()
    write_oversized(sparse, 256 << 20)
    result = run_python(
        """
        import json, resource, sys
        from pathlib import Path
        from fnnkit.store import load_trained
        from fnnkit.errors import FnnkitError
        from fnnkit.verify import verify
        folder, sparse = Path(sys.argv[1]), Path(sys.argv[2])
        import onnx, safetensors.torch, torch  # everything imported before the cap
        mapped = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (mapped + (64 << 20), resource.RLIM_INFINITY))
        out = {}
        try:
            bytearray(256 << 20)
            out["control"] = "allocated"
        except MemoryError:
            out["control"] = "MemoryError"
        for name, call in {"verify": lambda: verify(folder), "load_trained": lambda: load_trained(folder),
                           "verify oversized": lambda: verify(sparse)}.items():
            try:
                result = call()
                out[name] = [c.problem for c in result if not c.ok] if isinstance(result, list) else "LOADED"
            except FnnkitError as exc:
                out[name] = f"{type(exc).__name__}: {exc}"
            except MemoryError:
                out[name] = "MemoryError"
        print(json.dumps(out))
        """,
        str(variant),
        str(sparse),
    )
    out = last_json(result)
    assert out["control"] == "MemoryError", out
    assert out["load_trained"].startswith("ArtifactError") and str(path) in out["load_trained"], out
    assert any(str(path) in p and "only" in p for p in out["verify"]), out
    assert any(str(sparse) in p and "exceeds the" in p for p in out["verify oversized"]), out
    assert json.dumps(out).count("MemoryError") == 1  # the control's only
