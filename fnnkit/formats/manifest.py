"""``export.json`` read back: the manifest, and an exported file's bytes only if they are the ones it records.

Torch-free, below both the backends (which run the bytes) and the export writers (which record
them). A loader parses the bytes returned here, never the file again, so nothing can be swapped
in between the check and the parse.
"""

from __future__ import annotations

import os
from pathlib import Path

from fnnkit.errors import ArtifactError
from fnnkit.formats import FileFormat, get_format
from fnnkit.store import (
    EXPORT_MANIFEST,
    read_json,
    read_model_card,
    read_verified,
    spec_from_card,
    sweep_stale_temps,
    validate_export_entry,
)

EXPORT_SCHEMA = "fnnkit.export/1"


def read_export_manifest(folder: str | os.PathLike) -> dict:
    path = Path(folder) / EXPORT_MANIFEST
    manifest = read_json(path, what="export manifest")
    if manifest.get("schema") != EXPORT_SCHEMA or not isinstance(manifest.get("formats"), dict):
        raise ArtifactError(
            f"export manifest {path} has schema {manifest.get('schema')!r}, this fnnkit reads {EXPORT_SCHEMA!r}; "
            "re-export with `fnnkit export --force`"
        )
    return manifest


def checked_entry(folder: Path, key: str, entry: object) -> dict:
    """One export.json entry through the record schema (``store.validate_export_entry``), or ArtifactError."""
    try:
        validate_export_entry(entry)
    except ValueError as exc:
        raise ArtifactError(
            f"export manifest {folder / EXPORT_MANIFEST}: entry {key[:40]!r} {exc}; "
            "re-export with `fnnkit export --force`"
        ) from None
    return entry


def read_exported(folder: str | os.PathLike, format: str, device: str = "cpu") -> tuple[bytes, Path]:
    """An exported file's bytes, only if they match export.json and pass the format's vetting.

    What ``Backend.load`` opens; parse these bytes, never the file again.
    """
    folder = Path(folder)
    fmt = get_format(format)
    sweep_stale_temps(folder)
    manifest_path = folder / EXPORT_MANIFEST
    if not manifest_path.exists():
        raise ArtifactError(f"nothing exported in {folder} ({EXPORT_MANIFEST} missing); {_how_to(fmt, folder, device)}")
    entry = read_export_manifest(folder)["formats"].get(fmt.key(device))
    if entry is None:
        raise ArtifactError(f"{manifest_path} has no {fmt.key(device)} export; {_how_to(fmt, folder, device)}")
    entry = checked_entry(folder, fmt.key(device), entry)
    if entry["file"] != fmt.filename(device):
        raise ArtifactError(f"{manifest_path}: entry {fmt.key(device)} names file {entry['file']!r}; re-export")
    card = read_model_card(folder)
    weights_sha256 = card["weights"]["sha256"]
    if entry["source_sha256"] != weights_sha256:
        raise ArtifactError(
            f"{folder / entry['file']} was exported from other weights than the model now in {folder} "
            f"(stale: made from {entry['source_sha256'][:12]}..., model is {weights_sha256[:12]}...); "
            f"{_how_to(fmt, folder, device)}"
        )
    path = folder / entry["file"]
    data = read_verified(path, entry["sha256"])
    if fmt.vet is not None:
        fmt.vet(data, path, spec_from_card(card, folder))
    return data, path


def _how_to(fmt: FileFormat, folder: Path, device: str) -> str:
    command = export_command(folder.parent.parent, folder.parent.name, [folder.name], [fmt.name], device)
    return f"create it with: {command}"


def is_exported(folder: Path, format: str, device: str) -> bool:
    """export.json records ``format`` for ``device`` and the file is there (its sha256 is checked at load)."""
    fmt = get_format(format)
    if not (folder / EXPORT_MANIFEST).exists():
        return False
    entry = read_export_manifest(folder)["formats"].get(fmt.key(device))  # a damaged manifest raises, naming itself
    return isinstance(entry, dict) and (folder / fmt.filename(device)).is_file()


def export_command(root: Path, dataset: str, variants: list[str], formats: list[str], device: str) -> str:
    """The command that (re-)creates exports: every "create it with" hint for a missing or damaged export
    names it through here (a .pt2 built for another CPU names its own ``--isa`` re-export)."""
    return (
        f"fnnkit export --format {','.join(formats)} --variant {','.join(variants)} --dataset {dataset} "
        f"--device {device} --artifacts {root}"
    )
