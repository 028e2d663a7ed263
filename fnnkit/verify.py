"""Check artifacts without running any model code from them: what `fnnkit verify` reports.

verify only *reports*: each row is one of the checks the loaders themselves run, called here
through the same functions (``store.Artifact``'s ``card``, ``entry`` and ``check_current`` for records,
``store.read_regular`` for bounded regular files, ``safetensors_vet.vet_safetensors`` for weights, the
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
    EXPORT_MANIFEST,
    EXPORT_SCHEMA,
    MAX_EXPORT_BYTES,
    MODEL_CARD,
    MODEL_SCHEMA,
    TEMP_RE,
    WEIGHTS_FILE,
    Artifact,
    open_regular,
    pid_alive,
    read_regular,
    sha256_bytes,
)

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
    artifact = Artifact.at(folder)
    card = _check_card(artifact, checks)
    if card is not None or (folder / WEIGHTS_FILE).exists():
        _check_weights(artifact, card, checks)
    recorded = {MODEL_CARD, WEIGHTS_FILE, EXPORT_MANIFEST}
    recorded |= _check_manifest(artifact, card, checks)
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


def _check_card(artifact: Artifact, checks: list[Check]):
    """The card as the loaders read it (``Artifact.card``), or None when they would refuse it."""
    note = lambda: f"{MODEL_SCHEMA}, variant {artifact.card.variant.name}"  # noqa: E731
    ok = _attempt(checks, artifact.folder / MODEL_CARD, "schema", note)
    return artifact.card if ok else None


def _check_weights(artifact: Artifact, card, checks: list[Check]) -> None:
    """The loader's checks (``Artifact.weights``), each reported on its own row."""
    from fnnkit.store.records import max_weights_bytes

    path = artifact.folder / WEIGHTS_FILE
    spec = artifact.spec if card else None
    data: list[bytes] = []
    limit = max_weights_bytes(spec.num_parameters) if spec else MAX_EXPORT_BYTES
    if not _attempt(checks, path, "regular file", lambda: _read_into(data, path, limit)):
        return
    _attempt(checks, path, "safetensors header", lambda: vet_safetensors(data[0], path, spec))
    if card is not None:
        record = artifact.folder / MODEL_CARD
        _attempt(checks, path, "sha256", lambda: _sha_matches(sha256_bytes(data[0]), card.weights.sha256, path, record))


def check_safetensors_file(path: Path, expected: Expected | None = None) -> str:
    """Header and layout of a safetensors file nothing records, read as the loaders read."""
    with open_regular(path, MAX_EXPORT_BYTES, "safetensors file") as f:  # the header only, never the data
        header, data_bytes = read_safetensors_header(f, os.fstat(f.fileno()).st_size, path)
    return check_safetensors_layout(header, data_bytes, path, expected)


# --------------------------------------------------------------------------- exports


def _check_manifest(artifact: Artifact, card, checks: list[Check]) -> set[str]:
    """Schema of export.json and every entry's file; returns the file names it records."""
    path = artifact.folder / EXPORT_MANIFEST
    if not path.exists():
        return set()
    manifest = []

    def schema() -> str:
        manifest.append(artifact.manifest())
        return f"{EXPORT_SCHEMA}, {len(manifest[0].formats)} format(s)"

    if not _attempt(checks, path, "schema", schema):
        return set()
    names = set()
    for key, raw in manifest[0].formats.items():
        if name := _check_entry(artifact, key, raw, card, checks):
            names.add(name)
    return names


def _check_entry(artifact: Artifact, key: str, raw: object, card, checks: list[Check]) -> str | None:
    """The entry's record (``Artifact.entry``), then its file as a loader reads it, row by row."""
    from fnnkit.export import FORMATS

    manifest = artifact.folder / EXPORT_MANIFEST
    fmt = FORMATS.get(key.partition(":")[0])
    found = []

    def entry() -> str:
        if fmt is None:
            raise ArtifactError(f"{manifest}: entry {key!r} names no known format ({', '.join(FORMATS)})")
        found.append(artifact.entry(fmt, key, raw))
        return f"names {found[0].file}"

    if not _attempt(checks, manifest, f"entry {key}", entry):
        return None
    recorded, path = found[0], artifact.folder / found[0].file
    data: list[bytes] = []
    if not _attempt(checks, path, "regular file", lambda: _read_into(data, path, MAX_EXPORT_BYTES)):
        return path.name
    if card is not None:
        _attempt(checks, path, "current weights", lambda: artifact.check_current(fmt, recorded, path))
    if not _attempt(
        checks, path, "sha256", lambda: _sha_matches(sha256_bytes(data[0]), recorded.sha256, path, manifest)
    ):
        return path.name
    if fmt.vet is not None:  # .pt2 / TorchScript: native code and pickles; hashed, never opened
        spec = artifact.spec if card else None
        _attempt(checks, path, "onnx graph", lambda: _vetted(fmt.vet, data[0], path, spec))
    return path.name


def _vetted(vet: Callable, data: bytes, path: Path, spec) -> str:
    vet(data, path, spec)
    return "the loader's vetting passed: self-contained, onnx.checker, interface, MLP ops and shapes"


# --------------------------------------------------------------------------- what nothing records


def _check_strays(folder: Path, recorded: set[str], checks: list[Check]) -> None:
    """Symlinks, model files nothing records, and temp files of interrupted writes."""
    for path in sorted(folder.iterdir()):
        if path.name in recorded:
            continue
        if path.is_symlink():
            checks.append(Check(path, "regular file", False, problem=_symlink_problem(path)))
        elif match := TEMP_RE.match(path.name):
            checks.append(Check(path, "temp file", True, note=_temp_note(int(match["pid"]))))
        elif path.suffix in MODEL_SUFFIXES:
            checks.append(Check(path, "recorded", False, problem=_unrecorded_problem(path)))


def _symlink_problem(path: Path) -> str:
    return f"{path} is a symlink (to {os.readlink(path)}); fnnkit never writes one: remove it"


def _temp_note(pid: int) -> str:
    if pid_alive(pid):
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
