"""Check artifacts without running any model code from them: what `fnnkit verify` reports.

verify only *reports*: each row is one of the checks the loaders themselves run, called here
through the same functions (``store.read_model_card`` / ``read_regular`` for records and bounded
regular files, ``safetensors_vet.vet_safetensors`` for weights, ``export.checked_entry`` and the
format's ``vet`` for exports, the ONNX MLP vetting included). ``.pt2`` and TorchScript files can
carry native code and pickles, so they are only hashed, never opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fnnkit.errors import ArtifactError, ExportError, IntegrityError
from fnnkit.safetensors_vet import (
    MAX_HEADER_BYTES,
    Expected,
    check_safetensors_layout,
    expected_tensors,
    read_safetensors_header,
    vet_safetensors,
)
from fnnkit.store import (
    _TEMP_RE,
    EXPORT_MANIFEST,
    MAX_EXPORT_BYTES,
    MODEL_CARD,
    MODEL_SCHEMA,
    WEIGHTS_FILE,
    max_weights_bytes,
    open_regular,
    read_model_card,
    read_regular,
    sha256_bytes,
    spec_from_card,
)

ENTRY_FIELDS = ("file", "sha256", "bytes", "device", "versions", "source_sha256", "parity")
MODEL_SUFFIXES = (".safetensors", ".onnx", ".pt", ".pt2", ".pth", ".bin", ".data", ".pkl", ".ckpt")


@dataclass(frozen=True)
class Check:
    """One check on one file: ``problem`` says what is wrong and what to do; ``note`` what was confirmed."""

    file: Path
    check: str
    ok: bool
    problem: str = ""
    note: str = ""


# --------------------------------------------------------------------------- entry point


def verify(path: str | os.PathLike) -> list[Check]:
    """Every check on an artifacts root (all variant folders below it), one variant folder, or one file."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ArtifactError(f"{path} does not exist; give an artifacts folder, a variant folder or a file")
    if not path.is_dir():
        return verify_file(path)
    if is_variant_dir(path):
        return verify_variant(path)
    from fnnkit.export.triton_check import check_repository, is_triton_repository

    if is_triton_repository(path):  # `fnnkit export --format triton` output: every entry against what fnnkit writes
        rows = check_repository(path)
        return [Check(f, name, ok, "" if ok else text, text if ok else "") for f, name, ok, text in rows]
    folders = variant_dirs(path)
    if not folders:
        raise ArtifactError(
            f"no fnnkit artifacts under {path} (no {MODEL_CARD} or {EXPORT_MANIFEST} found); "
            "train first (fnnkit train) or give the folder that holds them"
        )
    return [check for folder in folders for check in verify_variant(folder)]


def is_variant_dir(folder: Path) -> bool:
    """A folder with a model card or manifest of any file type: a FIFO or symlink there is reported, not skipped."""
    return any(os.path.lexists(folder / name) for name in (MODEL_CARD, EXPORT_MANIFEST))


def variant_dirs(root: Path) -> list[Path]:
    """Folders below ``root`` that hold a model card or an export manifest, in path order."""
    found = {p.parent for name in (MODEL_CARD, EXPORT_MANIFEST) for p in root.rglob(name) if is_variant_dir(p.parent)}
    return sorted(found)


def verify_file(path: Path) -> list[Check]:
    """One file: its checks within its variant folder, or, outside one, what can be said without a record."""
    if is_variant_dir(path.parent):
        checks = [c for c in verify_variant(path.parent) if c.file == path]
        if checks:
            return checks
    return _unrecorded_file(path)


def verify_variant(folder: Path) -> list[Check]:
    """Card, weights, manifest, every exported file, and anything in the folder fnnkit did not record."""
    checks: list[Check] = []
    card = _check_card(folder, checks)
    if card is not None or (folder / WEIGHTS_FILE).exists():
        _check_weights(folder, card, checks)
    recorded = {MODEL_CARD, WEIGHTS_FILE, EXPORT_MANIFEST}
    recorded |= _check_manifest(folder, card, checks)
    _check_strays(folder, recorded, checks)
    return checks


# --------------------------------------------------------------------------- helpers


def _attempt(checks: list[Check], file: Path, name: str, check: Callable[[], str | None]) -> bool:
    """Run one check; an ArtifactError (or export's own ExportError, or an unreadable file) becomes a problem row."""
    try:
        note = check()
    except (ArtifactError, ExportError) as exc:
        checks.append(Check(file, name, False, problem=str(exc)))
        return False
    except OSError as exc:
        checks.append(Check(file, name, False, problem=f"cannot read {file}: {exc.strerror or exc}"))
        return False
    checks.append(Check(file, name, True, note=note or ""))
    return True


def _read_into(found: list[bytes], path: Path, limit: int) -> str:
    """The loaders' own read (``store.read_regular``: no symlink, regular file, bounded); keeps the bytes."""
    if not path.exists() and not path.is_symlink():
        raise ArtifactError(f"{path} is missing; re-create it with fnnkit (train or export)")
    found.append(read_regular(path, limit, "artifact"))
    return f"{len(found[0]):,} bytes"


def _sha_matches(actual: str, expected: object, path: Path, record: Path) -> str:
    if actual != expected:
        shown = f"{expected[:16]}..." if isinstance(expected, str) else repr(expected)
        raise IntegrityError(
            f"{path} has sha256 {actual[:16]}..., but {record} records {shown}: the file was changed or "
            "damaged, and fnnkit refuses to load it; re-create it with fnnkit"
        )
    return f"sha256 {actual[:12]}... matches {record.name}"


# --------------------------------------------------------------------------- model card and weights


def _check_card(folder: Path, checks: list[Check]) -> dict | None:
    path = folder / MODEL_CARD
    card: dict | None = None

    def check() -> str:
        nonlocal card
        found = read_model_card(folder)
        spec = spec_from_card(found, path)
        card = found
        return f"{MODEL_SCHEMA}, variant {spec.name}"

    _attempt(checks, path, "schema", check)
    return card


def _check_weights(folder: Path, card: dict | None, checks: list[Check]) -> None:
    """The loader's checks (``store.load_state_dict``), each reported on its own row."""
    path = folder / WEIGHTS_FILE
    spec = spec_from_card(card, folder / MODEL_CARD) if card else None
    data: list[bytes] = []
    limit = max_weights_bytes(spec) if spec else MAX_EXPORT_BYTES
    if not _attempt(checks, path, "regular file", lambda: _read_into(data, path, limit)):
        return
    _attempt(checks, path, "safetensors header", lambda: vet_safetensors(data[0], path, spec))
    if card is not None:
        recorded = card["weights"]["sha256"]
        record = folder / MODEL_CARD
        _attempt(checks, path, "sha256", lambda: _sha_matches(sha256_bytes(data[0]), recorded, path, record))


def check_safetensors_file(path: Path, expected: Expected | None = None) -> str:
    """Header and layout of a safetensors file nothing records, read as the loaders read."""
    with open_regular(path, MAX_EXPORT_BYTES, "safetensors file") as f:  # the header only, never the data
        header, data_bytes = read_safetensors_header(f, os.fstat(f.fileno()).st_size, path)
    return check_safetensors_layout(header, data_bytes, path, expected)


# --------------------------------------------------------------------------- exports


def _check_manifest(folder: Path, card: dict | None, checks: list[Check]) -> set[str]:
    """Schema of export.json and every entry's file; returns the file names it records."""
    from fnnkit.export import read_export_manifest

    path = folder / EXPORT_MANIFEST
    if not path.exists():
        return set()
    manifest: dict = {}

    def schema() -> str:
        manifest.update(read_export_manifest(folder))
        return f"{manifest['schema']}, {len(manifest['formats'])} format(s)"

    if not _attempt(checks, path, "schema", schema):
        return set()
    names = set()
    for key, entry in manifest["formats"].items():
        if name := _check_entry(folder, key, entry, card, checks):
            names.add(name)
    return names


def _entry_file(folder: Path, key: str, entry: object) -> Path:
    """The file an export.json entry names, only if it is the name fnnkit gives that format (no paths)."""
    from fnnkit.export import FORMATS
    from fnnkit.formats.manifest import checked_entry

    manifest = folder / EXPORT_MANIFEST
    fmt_name, _, device = key.partition(":")
    fmt = FORMATS.get(fmt_name)
    if fmt is None:
        raise ArtifactError(f"{manifest}: entry {key!r} names no known format ({', '.join(FORMATS)})")
    if not isinstance(entry, dict) or (missing := [f for f in ENTRY_FIELDS if f not in entry]):
        lacking = ", ".join(missing) if isinstance(entry, dict) else "everything (not a JSON object)"
        raise ArtifactError(f"{manifest}: entry {key!r} lacks {lacking}; re-export with `fnnkit export --force`")
    expected = fmt.filename(device or entry["device"])
    if entry["file"] != expected:
        raise ArtifactError(f"{manifest}: entry {key!r} names file {entry['file']!r}, fnnkit writes {expected!r}")
    checked_entry(folder, key, entry)
    if not isinstance(entry["parity"], dict) or entry["parity"].get("passed") is not True:
        raise ArtifactError(f"{manifest}: entry {key!r} does not record a passed parity check; re-export it")
    return folder / expected


def _check_entry(folder: Path, key: str, entry: object, card: dict | None, checks: list[Check]) -> str | None:
    manifest = folder / EXPORT_MANIFEST
    target: list[Path] = []

    def check() -> str:
        target.append(_entry_file(folder, key, entry))
        return f"names {target[0].name}"

    if not _attempt(checks, manifest, f"entry {key}", check):
        return None
    path = target[0]
    data: list[bytes] = []
    if not _attempt(checks, path, "regular file", lambda: _read_into(data, path, MAX_EXPORT_BYTES)):
        return path.name
    if card is not None:
        _attempt(checks, path, "current weights", lambda: _up_to_date(entry, card, path))
    recorded = entry["sha256"]
    if not _attempt(checks, path, "sha256", lambda: _sha_matches(sha256_bytes(data[0]), recorded, path, manifest)):
        return path.name
    from fnnkit.export import FORMATS

    fmt = FORMATS[key.partition(":")[0]]
    if fmt.vet is not None:  # .pt2 / TorchScript: native code and pickles; hashed, never opened
        spec = spec_from_card(card, folder / MODEL_CARD) if card else None
        _attempt(checks, path, "onnx graph", lambda: _vetted(fmt.vet, data[0], path, spec))
    return path.name


def _vetted(vet: Callable, data: bytes, path: Path, spec) -> str:
    vet(data, path, spec)
    return "the loader's vetting passed: self-contained, onnx.checker, interface, MLP ops and shapes"


def _up_to_date(entry: dict, card: dict, path: Path) -> str:
    if entry["source_sha256"] != card["weights"]["sha256"]:
        raise ArtifactError(
            f"{path} was exported from weights {str(entry['source_sha256'])[:12]}..., but model.safetensors is now "
            f"{card['weights']['sha256'][:12]}...: it no longer matches the trained model; re-export it "
            "(fnnkit export re-exports changed weights)"
        )
    return "exported from the current weights"


# --------------------------------------------------------------------------- what nothing records


def _check_strays(folder: Path, recorded: set[str], checks: list[Check]) -> None:
    """Symlinks, model files nothing records, and temp files of interrupted writes."""
    for path in sorted(folder.iterdir()):
        if path.name in recorded:
            continue
        if path.is_symlink():
            checks.append(Check(path, "regular file", False, problem=_symlink_problem(path)))
        elif match := _TEMP_RE.match(path.name):
            checks.append(Check(path, "temp file", True, note=_temp_note(int(match["pid"]))))
        elif path.suffix in MODEL_SUFFIXES:
            checks.append(Check(path, "recorded", False, problem=_unrecorded_problem(path)))


def _symlink_problem(path: Path) -> str:
    return f"{path} is a symlink (to {os.readlink(path)}); fnnkit never writes one: remove it"


def _temp_note(pid: int) -> str:
    from fnnkit.store import _pid_alive

    if _pid_alive(pid):
        return f"being written by process {pid}"
    return f"left by an interrupted write (process {pid} is gone); the next fnnkit command in this folder removes it"


def _unrecorded_problem(path: Path) -> str:
    return (
        f"{path} is not recorded in {MODEL_CARD} or {EXPORT_MANIFEST}: fnnkit cannot verify it and will not load it "
        "(a .pt2 or TorchScript file can run code when opened); delete it, or re-create it with fnnkit export"
    )


def _unrecorded_file(path: Path) -> list[Check]:
    """A file no fnnkit record covers: refused as unverifiable, plus the structural checks that run no code."""
    checks = [Check(path, "recorded", False, problem=_unrecorded_problem(path))]
    if path.is_symlink():
        checks.append(Check(path, "regular file", False, problem=_symlink_problem(path)))
    elif path.suffix == ".onnx" and path.is_file():
        from fnnkit.export import vet_onnx

        read = lambda: read_regular(path, MAX_EXPORT_BYTES)  # noqa: E731
        _attempt(checks, path, "onnx graph", lambda: _vetted(vet_onnx, read(), path, None))
    elif path.suffix == ".safetensors":
        _attempt(checks, path, "safetensors header", lambda: check_safetensors_file(path))
    return checks


__all__ = [
    "MAX_HEADER_BYTES",
    "Check",
    "check_safetensors_file",
    "check_safetensors_layout",
    "expected_tensors",
    "read_safetensors_header",
    "verify",
    "verify_file",
    "verify_variant",
    "vet_safetensors",
]
