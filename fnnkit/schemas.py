"""The JSON Schemas of fnnkit's records, generated from their models: ``python -m fnnkit.schemas [folder]``
writes them (default ``docs/schemas``); a test checks the committed files equal what this generates."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fnnkit.errors import FnnkitError
from fnnkit.store import atomic_write_bytes
from fnnkit.store.records import ExportEntry, ExportManifest, ModelCard
from fnnkit.tune.record import TuneRecord


def schemas() -> dict[str, dict]:
    """File name -> JSON Schema, for model.json, export.json (its entries inlined as ``$defs``) and the tune
    record (``fnnkit tune --json``)."""
    card = ModelCard.model_json_schema()
    manifest = ExportManifest.model_json_schema()
    entry = ExportEntry.model_json_schema()
    manifest["$defs"] = {**entry.pop("$defs", {}), "ExportEntry": entry}
    manifest["properties"]["formats"]["additionalProperties"] = {"$ref": "#/$defs/ExportEntry"}
    return {
        "model.schema.json": card,
        "export.schema.json": manifest,
        "tune.schema.json": TuneRecord.model_json_schema(),
    }


def render(schema: dict) -> bytes:
    return (json.dumps(schema, indent=2, sort_keys=True) + "\n").encode()


def main(argv: list[str]) -> int:
    """Parsed, so ``--help`` prints the usage instead of becoming a folder named ``--help``."""
    parser = argparse.ArgumentParser(prog="python -m fnnkit.schemas", description=__doc__.split(":")[0] + ".")
    parser.add_argument("folder", nargs="?", default="docs/schemas", help="where to write them (default: %(default)s)")
    folder = Path(parser.parse_args(argv).folder).absolute()
    try:
        for name, schema in schemas().items():
            print(atomic_write_bytes(folder / name, render(schema)))
    except FnnkitError as exc:  # a folder that cannot be written: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
