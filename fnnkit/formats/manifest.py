"""``export.json`` read back for a format: the manifest, and an exported file's bytes only if they are the
ones it records and pass the format's vetting (or carry the stamp of the vetting export ran here).

Torch-free, below both the backends (which run the bytes) and the export writers (which record
them). The records and checks are ``store.Artifact``'s; this adds the format's own vetting, and the
shortcut past records and vetting for an entry whose stamp holds (``fnnkit.formats.vetting``). A
loader parses the bytes returned here, never the file again, so nothing can be swapped in between.
"""

from __future__ import annotations

import os
from pathlib import Path

from fnnkit.errors import ArtifactError
from fnnkit.formats import FileFormat, get_format, vetting
from fnnkit.store import EXPORT_MANIFEST, MODEL_CARD, Artifact, read_json, read_verified, sweep_stale_temps
from fnnkit.store.artifact import export_command  # noqa: F401  (the one writer of the re-export command)


def read_export_manifest(folder: str | os.PathLike) -> dict:
    """``export.json`` through its record schema (``Artifact.manifest``), as JSON."""
    return Artifact.at(folder).manifest().model_dump(by_alias=True)


def read_exported(folder: str | os.PathLike, format: str, device: str = "cpu") -> tuple[bytes, Path]:
    """An exported file's bytes, only if they match export.json (``Artifact.exported``) and pass the format's
    vetting, or carry this machine's stamp of having passed it (``stamped``). What ``Backend.load`` opens;
    parse these bytes, never the file again."""
    fmt = get_format(format)
    artifact = Artifact.at(folder)
    if fmt.vet is not None:
        found = stamped(artifact, fmt, device)
        if found is not None:
            return found
    data, path = artifact.exported(fmt, device)
    if fmt.vet is not None:
        fmt.vet(data, path, artifact.spec)
    return data, path


def stamped(artifact: Artifact, fmt: FileFormat, device: str) -> tuple[bytes, Path] | None:
    """The file's bytes when its entry carries a stamp that ``vetting.holds`` for the records as they are now
    (export checked them and vetted exactly these bytes), read through the bounded JSON reader and
    ``read_verified`` only: no record schema, no onnx. None on anything else; the full path then checks
    records and file and names what is wrong."""
    sweep_stale_temps(artifact.folder)
    try:
        record = read_json(artifact.folder / EXPORT_MANIFEST, what="export manifest")
        card = read_json(artifact.folder / MODEL_CARD, what="model card")
        entry = record["formats"][fmt.key(device)]
        if not vetting.holds(entry.get("vetted"), fmt.name, card, record, entry):
            return None
        if entry["file"] != fmt.filename(device) or entry["source_sha256"] != card["weights"]["sha256"]:
            return None  # never stamped so; checked all the same, as the full path would
        path = artifact.folder / entry["file"]
        return read_verified(path, entry["sha256"]), path
    except (ArtifactError, KeyError, TypeError, AttributeError):
        return None


def is_exported(folder: Path, format: str, device: str) -> bool:
    """export.json records ``format`` for ``device`` and the file is there (its sha256 is checked at load)."""
    fmt = get_format(format)
    if not (Path(folder) / EXPORT_MANIFEST).exists():
        return False
    entry = Artifact.at(folder).manifest().formats.get(fmt.key(device))  # a damaged manifest raises, naming itself
    return entry is not None and (Path(folder) / fmt.filename(device)).is_file()
