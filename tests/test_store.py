"""fnnkit.store as a package: records through their schemas, the Artifact type, one bounded reader, the
published JSON Schemas. (Crash safety, locks and hostile files: tests/robustness.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from artifactkit import DATASET, copy_variants

from fnnkit.errors import ArtifactError, DataError, IntegrityError
from fnnkit.schemas import render, schemas
from fnnkit.store import EXPORT_MANIFEST, MODEL_CARD, WEIGHTS_FILE, Artifact, load_trained, open_regular
from fnnkit.store import artifact as artifact_module
from fnnkit.store.records import ExportEntry, ModelCard

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def copy(exported_root, tmp_path) -> Artifact:
    return Artifact(copy_variants(exported_root, tmp_path / "artifacts", "C"), DATASET, "C")


def _rewrite(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


# --------------------------------------------------------------------------- records


def test_published_schemas_are_the_generated_ones():
    """docs/schemas/ is regenerated with `python -m fnnkit.schemas`; a model change without it fails here."""
    for name, schema in schemas().items():
        assert (REPO / "docs" / "schemas" / name).read_bytes() == render(schema), f"regenerate docs/schemas/{name}"


@pytest.mark.parametrize("argv", [["--help"], ["--folder", "x"], ["-x"]])
def test_the_schema_writer_takes_no_option_for_a_folder(argv, tmp_path, monkeypatch, capsys):
    """`python -m fnnkit.schemas --help` prints its usage; it once wrote the schemas into a folder named --help."""
    from fnnkit.schemas import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    said = capsys.readouterr()
    assert exit_.value.code == (0 if argv == ["--help"] else 2)
    assert "usage: python -m fnnkit.schemas" in said.out + said.err
    assert list(tmp_path.iterdir()) == []
    assert main([str(tmp_path / "out")]) == 0 and len(list((tmp_path / "out").iterdir())) == len(schemas())
    (tmp_path / "a-file").write_text("x")
    assert main([str(tmp_path / "a-file" / "schemas")]) == 1  # a folder that cannot be made: one line
    said = capsys.readouterr()
    assert said.err.startswith("error: ") and said.err.count("\n") == 1 and "Traceback" not in said.err


CARD_CHANGES = {  # each: (change, words the one line must hold besides the file and the retrain command)
    "unknown field": (lambda c: c.update(surprise=1), "has field surprise"),
    "nested unknown field": (lambda c: c["weights"].update(url="http://x"), "has field weights.url"),
    "int as bool": (lambda c: c["variant"].update(hidden_layers=True), "field variant.hidden_layers"),
    "accuracy above 100": (lambda c: c.update(test_accuracy=100.5), "field test_accuracy"),
    "negative threads": (lambda c: c.update(threads=0), "field threads"),
    "history not a list": (lambda c: c.update(history={"a": 1}), "field history"),
    "weights too big for C": (lambda c: c["weights"].update(bytes=10**9), "weights.bytes must be at most"),
    "shape not the table's": (lambda c: c["variant"].update(hidden_dim=64), "variant C is 1 hidden relu x100"),
    "two fields missing": (lambda c: (c.pop("history"), c.pop("weights")), "lacks field(s) history, weights"),
    "other schema": (lambda c: c.update(schema="fnnkit.model/99"), "field schema"),
}


@pytest.mark.parametrize("case", list(CARD_CHANGES))
def test_card_refusal_names_the_file_the_field_and_the_command(copy, case):
    change, words = CARD_CHANGES[case]
    _rewrite(copy.folder / MODEL_CARD, change)
    with pytest.raises(ArtifactError) as info:
        copy.card  # noqa: B018
    message = str(info.value)
    assert "\n" not in message and str(copy.folder / MODEL_CARD) in message and words in message, message
    assert message.endswith(f"re-create it with: {copy.train_command()}"), message


def test_non_finite_numbers_are_refused_however_spelled(copy):
    text = (copy.folder / MODEL_CARD).read_text()
    (copy.folder / MODEL_CARD).write_text(text.replace('"test_accuracy": ', '"test_accuracy": 1e999, "x": ', 1))
    with pytest.raises(ArtifactError, match="not valid JSON.*1e999 is not a finite number"):
        copy.card  # noqa: B018


ENTRY_CHANGES = {
    "unknown field": (lambda e: e.update(url="x"), "has field url"),
    "parity not passed": (lambda e: e["parity"].update(passed=False), "field parity.passed"),
    "bytes over the limit": (lambda e: e.update(bytes=2**40), "field bytes"),
    "not an object": (lambda e: (e.clear(), e.update(_=1)), "lacks field(s)"),
}


@pytest.mark.parametrize("case", list(ENTRY_CHANGES))
def test_export_entry_refusal_names_the_entry_and_the_re_export(copy, case):
    from fnnkit.export import read_exported

    change, words = ENTRY_CHANGES[case]
    _rewrite(copy.folder / EXPORT_MANIFEST, lambda m: change(m["formats"]["onnx"]))
    with pytest.raises(ArtifactError) as info:
        read_exported(copy.folder, "onnx")
    message = str(info.value)
    assert f"export manifest {copy.folder / EXPORT_MANIFEST}: entry 'onnx'" in message and words in message, message
    assert message.endswith(f"{copy.export_command(['onnx'], 'cpu')} --force"), message


def test_records_fnnkit_writes_pass_their_own_schema(exported_root):
    folder = exported_root / DATASET / "C"
    card = ModelCard.model_validate(json.loads((folder / MODEL_CARD).read_text()))
    assert card.variant.num_parameters == 79_510 and card.weights.file == WEIGHTS_FILE
    for entry in json.loads((folder / EXPORT_MANIFEST).read_text())["formats"].values():
        assert ExportEntry.model_validate(entry).parity.passed is True
    with pytest.raises(ValueError, match="frozen"):
        card.test_accuracy = 1.0


# --------------------------------------------------------------------------- the Artifact type


def test_the_layout_rule_both_ways(tmp_path):
    artifact = Artifact(tmp_path, "mnist", "C")
    assert artifact.folder == tmp_path / "mnist" / "C"
    back = Artifact.at(artifact.folder)
    assert (back.root, back.dataset, back.variant) == (tmp_path, "mnist", "C")
    assert artifact.train_command() == f"fnnkit train --variant C --dataset mnist --artifacts {tmp_path}"
    with pytest.raises(ValueError, match="relative"):
        Artifact("artifacts", "mnist", "C")


def test_find_and_lookup(trained_root, tmp_path):
    assert Artifact.find(trained_root, "C").dataset == DATASET == Artifact.lookup(trained_root, "C").dataset
    assert Artifact.lookup(trained_root, "C", "mnist") is None
    assert not Artifact.find(trained_root, "C", "mnist").trained  # an explicit dataset: the folder it would be
    with pytest.raises(ArtifactError, match=f"train it first: fnnkit train --variant C --artifacts {tmp_path}"):
        Artifact.find(tmp_path, "C")
    with pytest.raises(ArtifactError, match="train it first: fnnkit train --variant C --dataset mnist --artifacts"):
        Artifact(tmp_path, "mnist", "C").card  # noqa: B018


def test_a_load_reads_the_card_once(copy, monkeypatch):
    reads = []
    original = artifact_module.read_json
    monkeypatch.setattr(artifact_module, "read_json", lambda path, **kw: reads.append(path) or original(path, **kw))
    model, card = load_trained(copy.folder)
    assert reads == [copy.folder / MODEL_CARD] and card["variant"]["name"] == "C" and not model.training
    reads.clear()
    data, path = copy.exported(_fmt("onnx"), "cpu")  # manifest, then the card (the weights it was made from)
    assert reads == [copy.folder / EXPORT_MANIFEST, copy.folder / MODEL_CARD] and path.name == "model.onnx"


def test_a_save_between_card_and_weights_is_read_again_not_called_damaged(copy, trained_root):
    """A reader holding the old card meets new weights: one fresh read of the card settles it."""
    copy.card  # noqa: B018  (cached: the old card)
    other = trained_root / DATASET / "D"
    for name in (WEIGHTS_FILE, MODEL_CARD):
        shutil.copy(other / name, copy.folder / name)  # what a commit swaps in
    assert copy.weights() and copy.card.variant.name == "D"
    (copy.folder / WEIGHTS_FILE).write_bytes(b"\0" * 64)  # a real mismatch stays one
    with pytest.raises(IntegrityError, match="changed or damaged"):
        Artifact.at(copy.folder).weights()


def _fmt(name: str):
    from fnnkit.export import get_format

    return get_format(name)


# --------------------------------------------------------------------------- one bounded reader


def test_one_bounded_reader_with_the_callers_error_and_symlink_rule(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"x" * 100)
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ArtifactError, match="is a symlink"):
        open_regular(link, 1000).__enter__()
    with open_regular(link, 1000, follow_symlinks=True) as f:  # a user's dataset may be a system copy's symlink
        assert f.read() == b"x" * 100
    with pytest.raises(DataError, match="not a regular file"):
        open_regular(fifo, None, "dataset file", error=DataError, follow_symlinks=True).__enter__()
    with pytest.raises(ArtifactError, match="more than such a file may have"):
        open_regular(real, 99).__enter__()


def test_data_and_predict_read_through_the_store():
    """The bounded open is written once: data/ and predict/ call it instead of opening files themselves."""
    for module in ("data/idx.py", "predict/inputs.py"):
        text = (REPO / "fnnkit" / module).read_text()
        assert "from fnnkit.store.io import open_regular" in text and "os.open(" not in text, module
