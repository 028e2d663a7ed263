"""Vetting stamps: a file export vetted here loads without a second vetting; every other file is vetted in full.

``read_exported`` is run with each ONNX format's ``vet`` wrapped in a counter: a stamped entry must
load with zero vettings, and every entry the stamp does not vouch for (no stamp, a stamp of another
format, key, rule set or file, a key others could read or swap) must be vetted (or refused) exactly
as before stamps existed. The torch- and onnx-free loads themselves are tests/test_torch_free.py's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
from artifactkit import DATASET, copy_variants

from fnnkit.errors import ArtifactError
from fnnkit.formats import FORMATS, manifest, vetting
from fnnkit.store import EXPORT_MANIFEST, MODEL_CARD, sha256_bytes

VARIANT = "C"
ONNX_KEYS = [name for name, fmt in FORMATS.items() if fmt.vet is not None]


@pytest.fixture
def folder(exported_root, tmp_path) -> Path:
    return copy_variants(exported_root, tmp_path, VARIANT) / DATASET / VARIANT


@pytest.fixture
def vettings(monkeypatch) -> list[str]:
    """Names of the formats ``read_exported`` vetted, in order (the real vetting still runs)."""
    seen: list[str] = []

    def counted(name: str):
        fmt = FORMATS[name]

        def vet(data, path, spec):
            seen.append(name)
            fmt.vet(data, path, spec)

        return dataclasses.replace(fmt, vet=vet)

    monkeypatch.setattr(manifest, "get_format", counted)
    return seen


def edit_entry(folder: Path, key: str, change) -> None:
    path = folder / EXPORT_MANIFEST
    record = json.loads(path.read_text())
    change(record["formats"][key], record["formats"])
    path.write_text(json.dumps(record))


def test_export_stamps_each_onnx_entry_and_nothing_else(folder):
    record = json.loads((folder / EXPORT_MANIFEST).read_text())
    card = json.loads((folder / MODEL_CARD).read_text())
    stamped = {key for key, entry in record["formats"].items() if "vetted" in entry}
    assert stamped == {key for key in record["formats"] if key in ONNX_KEYS} and stamped
    other_variant = {**card, "variant": {**card["variant"], "name": "D"}}
    for key in stamped:
        entry = record["formats"][key]
        assert vetting.holds(entry["vetted"], key, card, record, entry)
        assert not vetting.holds(entry["vetted"], key, other_variant, record, entry)
        assert not vetting.holds(entry["vetted"], key, card, {**record, "dataset": "mnist"}, entry)


@pytest.mark.parametrize("key", ["onnx", "onnx-int8", "onnx-int8-static"])
def test_a_stamped_file_loads_without_a_second_vetting(folder, vettings, key):
    data, path = manifest.read_exported(folder, key, "cpu")
    assert vettings == [] and data == path.read_bytes() and path == folder / FORMATS[key].file


def _drop(entry, formats):
    del entry["vetted"]


def _other_formats_stamp(entry, formats):
    entry["vetted"] = formats["onnx-int8"]["vetted"]


def _rewritten(folder: Path) -> None:
    """Other (still valid) bytes, their sha256 re-recorded and the old stamp kept: a forger's copy."""
    import onnx

    path = folder / "model.onnx"
    proto = onnx.load_model_from_string(path.read_bytes())
    proto.doc_string = "not the bytes that were vetted"
    path.write_bytes(proto.SerializeToString())
    edit_entry(folder, "onnx", lambda entry, formats: entry.update(sha256=sha256_bytes(path.read_bytes())))


def _other_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(vetting, "key_path", lambda: tmp_path / "elsewhere" / "vetting.key")


def _key_readable_by_others(tmp_path: Path, monkeypatch) -> None:
    loose = tmp_path / "loose.key"
    shutil.copyfile(vetting.key_path(), loose)
    os.chmod(loose, 0o644)
    monkeypatch.setattr(vetting, "key_path", lambda: loose)


def _key_behind_a_symlink(tmp_path: Path, monkeypatch) -> None:
    link = tmp_path / "link.key"
    link.symlink_to(vetting.key_path())
    monkeypatch.setattr(vetting, "key_path", lambda: link)


@pytest.mark.parametrize(
    "case",
    ["no stamp", "another format's stamp", "bytes rewritten, stamp kept", "another key", "other rules",
     "key readable by others", "key behind a symlink"],
)  # fmt: skip
def test_what_no_stamp_vouches_for_is_vetted_in_full(folder, vettings, case, tmp_path, monkeypatch):
    if case == "no stamp":
        edit_entry(folder, "onnx", _drop)
    elif case == "another format's stamp":
        edit_entry(folder, "onnx", _other_formats_stamp)
    elif case == "bytes rewritten, stamp kept":
        _rewritten(folder)
    elif case == "another key":
        _other_key(tmp_path, monkeypatch)
        assert vetting.stamp("onnx", *RECORDS)  # a key exists there, and it is not ours
    elif case == "other rules":
        monkeypatch.setattr(vetting, "RULES", "fnnkit.onnx-vet/0")
    elif case == "key readable by others":
        _key_readable_by_others(tmp_path, monkeypatch)
    else:
        _key_behind_a_symlink(tmp_path, monkeypatch)
    data, path = manifest.read_exported(folder, "onnx", "cpu")
    assert vettings == ["onnx"] and data == path.read_bytes()


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda entry: entry.update(vetted=["not", "a", "stamp"]), "field vetted"),
        (lambda entry: entry.update(url="x"), "has field url"),  # the stamp no longer holds: schema-checked
        (lambda entry: entry["parity"].update(passed=False), "field parity.passed"),
        (lambda entry: entry.update(source_sha256="0" * 64), "is stale"),
    ],
)
def test_an_edited_stamped_entry_gets_the_full_checks(folder, vettings, change, words):
    edit_entry(folder, "onnx", lambda entry, formats: change(entry))
    with pytest.raises(ArtifactError, match=words):
        manifest.read_exported(folder, "onnx", "cpu")
    assert vettings == []  # refused by the record checks, before any vetting


def test_an_edited_card_voids_the_stamps(folder, vettings):
    path = folder / MODEL_CARD
    card = json.loads(path.read_text())
    card["variant"]["description"] = "edited by hand"
    path.write_text(json.dumps(card))
    manifest.read_exported(folder, "onnx", "cpu")
    assert vettings == ["onnx"]


def test_export_restamps_a_current_file_whose_card_changed(folder, vettings):
    """Retrained to the same weights (a new card): export keeps the file and stamps it again."""
    from fnnkit.export import export_variant

    test_an_edited_card_voids_the_stamps(folder, vettings)
    before = (folder / "model.onnx").read_bytes()
    (result,) = export_variant(folder, "onnx")
    assert result.status == "reused" and (folder / "model.onnx").read_bytes() == before
    manifest.read_exported(folder, "onnx", "cpu")
    assert vettings == ["onnx"]  # the fresh stamp holds: the load after the export vets nothing


RECORDS = ({"variant": {"name": "A"}}, {"schema": "s", "variant": "A", "dataset": "d"}, {"sha256": "a" * 64})


def test_the_key_is_private_made_once_and_never_replaced(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "vetting.key"
    monkeypatch.setattr(vetting, "key_path", lambda: path)
    first = vetting.stamp("onnx", *RECORDS)
    mode = path.stat().st_mode & 0o777
    assert first and len(first) == 64 and mode == 0o600 and path.stat().st_size == vetting.KEY_BYTES
    assert vetting.stamp("onnx", *RECORDS) == first  # the same key, read back
    assert vetting.holds(first, "onnx", *RECORDS)
    assert not vetting.holds(first, "onnx-int8", *RECORDS)
    for i in range(3):
        changed = list(RECORDS)
        changed[i] = {**changed[i], "extra": 1}
        assert not vetting.holds(first, "onnx", *changed)
    assert vetting.holds(first, "onnx", *RECORDS[:2], {**RECORDS[2], "vetted": "anything"})  # not part of it
    assert not vetting.holds(first.upper(), "onnx", *RECORDS) and not vetting.holds(None, "onnx", *RECORDS)
    assert not vetting.holds(first, "onnx", RECORDS[0], RECORDS[1], ["not", "a", "dict"])
    path.write_bytes(path.read_bytes()[:-1])  # a damaged key vouches for nothing, and is not replaced
    assert not vetting.holds(first, "onnx", *RECORDS) and path.stat().st_size == vetting.KEY_BYTES - 1
    assert [p.name for p in path.parent.iterdir()] == ["vetting.key"]  # no temporary file left


def test_without_a_writable_cache_export_writes_no_stamp(tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    monkeypatch.setattr(vetting, "key_path", lambda: blocked / "vetting.key")
    assert vetting.stamp("onnx", *RECORDS) is None
