"""``Artifact(root, dataset, variant)``: the layout rule ``<root>/<dataset>/<variant>/`` in one type.

An Artifact finds its folder, reads its model card once, returns weights and exported files only
after their recorded sha256 matched, and names the command that (re-)creates whatever is missing
or damaged. Saving writes weights and card as one unit (``commit.commit_files``) under the folder's
lock, and refuses to replace a model with one that learned nothing.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Protocol

from fnnkit.errors import ArtifactError, IntegrityError, WorseModel
from fnnkit.paths import require_absolute
from fnnkit.store.commit import commit_files, json_bytes
from fnnkit.store.io import ensure_writable_dir, read_json, read_verified, sha256_bytes
from fnnkit.store.locks import folder_lock, sweep_stale_temps
from fnnkit.store.names import EXPORT_MANIFEST, MODEL_CARD, WEIGHTS_FILE

DATASET_PREFERENCE = ("mnist", "fashion-mnist", "mnist-sample")  # best data first
CHANCE_FACTOR = 1.5  # under 1.5x guessing (15% for ten classes) a network learned nothing; MNIST's top digit: 11.35%
FAR_BELOW_POINTS = 10.0  # test-accuracy points a new run may lose against the model it replaces without being asked


class FileKind(Protocol):
    """What the store needs of an export format (``fnnkit.export.ExportFormat``): its name, manifest key and file."""

    name: str

    def key(self, device: str) -> str: ...

    def filename(self, device: str) -> str: ...


def train_command(root: str | os.PathLike, variants: str, dataset: str | None = None) -> str:
    """The command that (re-)trains ``variants`` under ``root``: every "train it first" hint names it."""
    return f"fnnkit train --variant {variants}{f' --dataset {dataset}' if dataset else ''} --artifacts {root}"


def export_command(root: str | os.PathLike, dataset: str, variants: list[str], formats: list[str], device: str) -> str:
    """The command that (re-)creates exports: every "create it with" hint for a missing or damaged export
    names it (a .pt2 built for another CPU names its own ``--isa`` re-export)."""
    return (
        f"fnnkit export --format {','.join(formats)} --variant {','.join(variants)} --dataset {dataset} "
        f"--device {device} --artifacts {root}"
    )


def variant_dir(root: str | os.PathLike, dataset: str, variant: str) -> Path:
    """The layout rule; ``root`` must be absolute (``fnnkit.paths``): children run in other folders."""
    return Artifact(root, dataset, variant).folder


def trained_datasets(root: str | os.PathLike) -> list[str]:
    """Datasets with at least one trained variant under ``root``, best data first."""
    root = require_absolute(root, "artifacts root")
    found = [d.name for d in root.iterdir() if d.is_dir() and any(d.glob(f"*/{MODEL_CARD}"))] if root.is_dir() else []
    return sorted(found, key=lambda n: (DATASET_PREFERENCE.index(n) if n in DATASET_PREFERENCE else 99, n))


class Artifact:
    """One trained variant's folder and everything recorded in it."""

    def __init__(self, root: str | os.PathLike, dataset: str, variant: str) -> None:
        self.root = require_absolute(root, "artifacts root")
        self.dataset, self.variant = dataset, variant
        self.folder = self.root / dataset / variant
        self._card = None  # (ModelCard, its JSON) once read

    @classmethod
    def at(cls, folder: str | os.PathLike) -> Artifact:
        """The artifact whose folder is ``folder`` (absolute): the one place the layout is read backwards."""
        folder = require_absolute(folder, "variant folder")
        return cls(folder.parent.parent, folder.parent.name, folder.name)

    @classmethod
    def find(cls, root: str | os.PathLike, variant: str, dataset: str | None = None) -> Artifact:
        """``variant`` under ``root``; ``dataset`` None or "auto" picks the best dataset it is trained on."""
        found = cls.lookup(root, variant, dataset)
        if found is not None:
            return found
        if dataset not in (None, "auto"):
            return cls(root, dataset, variant)  # not trained (yet): its card says so, naming the command
        raise ArtifactError(
            f"no trained variant {variant} under {Path(root)}; train it first: "
            f"{train_command(root, variant)}   (or `make train-all`)"
        )

    @classmethod
    def lookup(cls, root: str | os.PathLike, variant: str, dataset: str | None = None) -> Artifact | None:
        """The trained ``variant`` (on ``dataset``, or on the best dataset when None or "auto"), or None."""
        datasets = trained_datasets(root) if dataset in (None, "auto") else [dataset]
        found = (cls(root, d, variant) for d in datasets)
        return next((a for a in found if a.trained), None)

    def __repr__(self) -> str:
        return f"Artifact({str(self.root)!r}, {self.dataset!r}, {self.variant!r})"

    @property
    def trained(self) -> bool:
        """A model card is there (of any file type: reading it says whether it is a good one)."""
        return os.path.lexists(self.folder / MODEL_CARD)

    # ------------------------------------------------------------------ the re-create commands

    def train_command(self) -> str:
        return train_command(self.root, self.variant, self.dataset)

    def export_command(self, formats: list[str], device: str) -> str:
        return export_command(self.root, self.dataset, [self.variant], formats, device)

    def retrain_hint(self) -> str:
        return f"re-create it with: {self.train_command()}"

    # ------------------------------------------------------------------ model card and weights

    @property
    def card(self):
        """``model.json`` as a ``ModelCard``: bounded and schema-checked, read once."""
        return self._read_card()[0]

    @property
    def card_json(self) -> dict:
        """The same card as the JSON object it was read from (for callers that index it as a dict)."""
        return self._read_card()[1]

    def _read_card(self, again: bool = False):
        if self._card is None or again:
            from fnnkit.store.records import ModelCard, check

            path = self.folder / MODEL_CARD
            if not self.trained:
                raise ArtifactError(
                    f"no trained model in {self.folder} ({MODEL_CARD} missing); train it first: {self.train_command()}"
                )
            payload = read_json(path, what="model card")
            self._card = check(ModelCard, payload, f"model card {path}:", self.retrain_hint()), payload
        return self._card

    @property
    def spec(self):
        """The VariantSpec the card describes (the card's variant matched the table when it was read)."""
        from fnnkit.variants import VARIANTS

        return VARIANTS[self.card.variant.name]

    def weights(self, framework: str = "torch") -> dict:
        """The state dict (torch tensors; ``framework="numpy"``: numpy arrays, no torch imported), after its
        sha256 matched the card's and its header passed the checks `fnnkit verify` runs (lengths, offsets,
        the variant's tensor names, dtypes, shapes). A reader that read the card just before a save swapped
        the folder meets the new weights' sha256: it reads the card again once instead of calling them
        damaged."""
        if framework not in ("torch", "numpy"):
            raise ValueError(f"framework must be 'torch' or 'numpy', not {framework!r}")
        try:
            return self._weights(framework)
        except IntegrityError:
            before = self.card_json
            if self._read_card(again=True)[1] == before:
                raise
            return self._weights(framework)

    def _weights(self, framework: str) -> dict:
        from safetensors import SafetensorError

        if framework == "numpy":
            from safetensors.numpy import load as safetensors_load
        else:
            from safetensors.torch import load as safetensors_load

        from fnnkit.safetensors_vet import vet_safetensors
        from fnnkit.store.records import max_weights_bytes

        path, card = self.folder / WEIGHTS_FILE, self.card
        limit = max_weights_bytes(card.variant.num_parameters)
        data = read_verified(path, card.weights.sha256, limit=limit, hint=self.retrain_hint())
        vet_safetensors(data, path, self.spec)
        try:
            return safetensors_load(data)
        except (SafetensorError, ValueError) as exc:
            raise ArtifactError(f"{path} is not a valid safetensors file ({exc}); {self.retrain_hint()}") from None

    def load_model(self, device: str = "cpu"):
        """The trained ``nn.Module``, in eval mode, after the weights' checks."""
        from fnnkit.network import FeedForward

        sweep_stale_temps(self.folder)
        state = self.weights()
        model = FeedForward(self.spec)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ArtifactError(f"{self.folder / WEIGHTS_FILE} does not fit variant {self.variant}: {exc}") from None
        return model.to(device).eval()

    # ------------------------------------------------------------------ exports

    def manifest(self):
        """``export.json`` as an ``ExportManifest`` (its entries checked one at a time by ``entry``)."""
        from fnnkit.store.records import ExportManifest, check

        path = self.folder / EXPORT_MANIFEST
        payload = read_json(path, what="export manifest")
        return check(ExportManifest, payload, f"export manifest {path}:", "re-export with `fnnkit export --force`")

    def entry(self, fmt: FileKind, key: str, raw: object):
        """``raw``, the manifest's entry ``key`` of ``fmt``, as an ``ExportEntry`` naming the file fnnkit
        gives that format, or one ArtifactError line with the command that re-creates it."""
        from fnnkit.store.records import ExportEntry, check

        manifest, device = self.folder / EXPORT_MANIFEST, key.partition(":")[2]
        hint = f"re-export it: {self.export_command([fmt.name], device or 'cpu')} --force"
        entry = check(ExportEntry, raw, f"export manifest {manifest}: entry {key[:40]!r}", hint)
        expected = fmt.filename(device or entry.device)
        if entry.file != expected:
            raise ArtifactError(
                f"export manifest {manifest}: entry {key!r} names file {entry.file!r}, "
                f"fnnkit writes {expected!r}; {hint}"
            )
        return entry

    def recorded(self, fmt: FileKind, device: str):
        """The checked entry of ``fmt`` on ``device``, or None when nothing is recorded for it."""
        if not (self.folder / EXPORT_MANIFEST).exists():
            return None
        raw = self.manifest().formats.get(fmt.key(device))  # a damaged manifest raises, naming itself
        return None if raw is None else self.entry(fmt, fmt.key(device), raw)

    def check_current(self, fmt: FileKind, entry, path: Path) -> str:
        """That ``entry`` was made from the weights now in the folder (a retrained model makes exports stale)."""
        weights = self.card.weights.sha256
        if entry.source_sha256 != weights:
            raise ArtifactError(
                f"{path} is stale: exported from weights {entry.source_sha256[:12]}..., but {WEIGHTS_FILE} is now "
                f"{weights[:12]}...: it no longer matches the trained model; re-export it: "
                f"{self.export_command([fmt.name], entry.device)}"
            )
        return "exported from the current weights"

    def exported(self, fmt: FileKind, device: str) -> tuple[bytes, Path]:
        """An exported file's bytes, only if export.json records them for ``device``, they were made from the
        current weights, and their sha256 matches. Parse these bytes, never the file again."""
        sweep_stale_temps(self.folder)
        how = f"create it with: {self.export_command([fmt.name], device)}"
        if not (self.folder / EXPORT_MANIFEST).exists():
            raise ArtifactError(f"nothing exported in {self.folder} ({EXPORT_MANIFEST} missing); {how}")
        entry = self.recorded(fmt, device)
        if entry is None:
            raise ArtifactError(f"{self.folder / EXPORT_MANIFEST} has no {fmt.key(device)} export; {how}")
        path = self.folder / entry.file
        self.check_current(fmt, entry, path)
        return read_verified(path, entry.sha256, hint=f"re-{how}"), path


# --------------------------------------------------------------------------- saving


def save_trained(folder: str | os.PathLike, state_dict: dict, card: dict, *, replace_worse: bool = False) -> Path:
    """Write weights and the card that vouches for them as one unit (``commit_files``).

    Non-finite weights or card numbers are refused before anything is written, so a diverged
    training leaves the previous model as it was. So is a run that would replace a model with one
    at chance level or far below it (``refuse_worse``), unless ``replace_worse``. The card passes the
    same schema a reader checks, so fnnkit never writes a card it would refuse to read.
    """
    import torch
    from safetensors.torch import save as safetensors_save

    from fnnkit.store.records import ModelCard, check

    folder = ensure_writable_dir(folder)
    bad = [name for name, t in state_dict.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ArtifactError(
            f"the trained weights hold NaN or infinity ({', '.join(bad)}): training diverged; nothing was "
            f"written and the previous model in {folder} is unchanged. Try a smaller --lr"
        )
    metadata = {"variant": card["variant"]["name"], "dataset": card["dataset"]["name"]}
    data = canonical_safetensors(
        safetensors_save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, metadata=metadata)
    )
    card = {**card, "weights": {"file": WEIGHTS_FILE, "sha256": sha256_bytes(data), "bytes": len(data)}}
    try:
        text = json_bytes(card)
    except ValueError:
        raise ArtifactError(
            f"the model card for {folder} holds NaN or infinity (training diverged); nothing was written"
        ) from None
    new = check(ModelCard, json.loads(text), f"the model card for {folder}", "nothing was written (a bug in fnnkit)")
    with folder_lock(folder):
        if not replace_worse:
            refuse_worse(Artifact.at(folder), new)
        commit_files(folder, {WEIGHTS_FILE: lambda p: p.write_bytes(data), MODEL_CARD: lambda p: p.write_bytes(text)})
    return folder


def canonical_safetensors(data: bytes) -> bytes:
    """The same tensors always give the same bytes: safetensors writes its metadata map in hash order, which
    varies from process to process, so the header is rewritten with sorted keys (a safetensors reader accepts
    any order and the space padding). Same seed, same weights, same sha256: exports stay current."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.dumps(json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data section stays 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(header)) + header + data[8 + length :]


def refuse_worse(artifact: Artifact, card) -> None:
    """WorseModel if ``card``'s run would replace the model of ``artifact`` with one at chance level (under
    ``CHANCE_FACTOR`` x guessing) or more than ``FAR_BELOW_POINTS`` below it. Nothing to replace, or a
    damaged card there, replaces nothing good: the run is saved."""
    try:
        old = artifact.card.test_accuracy
    except ArtifactError:
        return
    new = card.test_accuracy
    chance = 100.0 / len(card.dataset.classes or range(10))
    if new < CHANCE_FACTOR * chance:
        why = f"ended at chance level ({new:.2f}% test accuracy; guessing scores {chance:.0f}%)"
    elif new < old - FAR_BELOW_POINTS:
        why = f"ended at {new:.2f}% test accuracy, {old - new:.1f} points below the model it would replace"
    else:
        return
    raise WorseModel(
        f"training {card.variant.name} {why}: nothing was written, and the model in {artifact.folder} "
        f"({old:.2f}%) is kept. Check --lr and --iters; to keep this run anyway, add --replace-worse"
    )


# --------------------------------------------------------------------------- by folder, for callers holding a path


def find_variant_dir(root: str | os.PathLike, variant: str, dataset: str | None = None) -> Path:
    """Folder of a trained variant; ``dataset=None`` picks the best dataset trained under ``root``."""
    return Artifact.find(root, variant, dataset).folder


def read_model_card(folder: str | os.PathLike) -> dict:
    """``model.json`` of a trained variant as JSON, bounded and schema-checked (``Artifact.card``)."""
    return Artifact.at(folder).card_json


def load_trained(folder: str | os.PathLike, device: str = "cpu"):
    """The trained ``nn.Module`` in ``folder`` and its card (JSON), one read of the card. Returns (model, card)."""
    artifact = Artifact.at(folder)
    return artifact.load_model(device), artifact.card_json
