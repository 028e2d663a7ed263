"""What `fnnkit verify` checks on a Triton model repository: the whole of it, against what fnnkit writes.

Triton acts on everything in a repository: it serves the newest version folder, loads the file
``default_model_filename`` names, dlopens ``model_operations.op_library_filename``, reads labels
in file order. So nothing is taken on trust: every entry of the repository and of each model
folder must be one fnnkit writes (``config.pbtxt``, ``labels.txt``, ``1/model.onnx``, the lock
files beside them); the config must be exactly the one fnnkit would write for its own settings
(any other field, a ``platform`` beside ``backend``, another parameter, is named); the ONNX file
must hash to the config's record and pass the loaders' vetting for its precision; the labels must
be the dataset's classes in logit order. Every file is read through the store's bounded,
regular-file-only reader, so a FIFO, a symlink to ``/dev/zero`` or a huge sparse file is refused
before a byte is read. Nothing here runs model code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fnnkit.errors import ArtifactError, ConfigError, ExportError
from fnnkit.export.triton import (
    CONFIG,
    LABELS,
    MODEL_NAME_RE,
    ONNX_IN_REPO,
    ONNX_KEY,
    TRITON_EXTRA,
    VERSION,
    WEIGHTS_KEY,
    TritonSettings,
    config_text,
    labels_text,
)
from fnnkit.store import ASIDE_RE, MAX_EXPORT_BYTES, TEMP_RE, pid_alive, read_regular, sha256_bytes

MAX_CONFIG_BYTES = 64 << 10  # fnnkit's config.pbtxt is about 1 KiB
MAX_LABELS_BYTES = 64 << 10  # ten class names
_LOCK_RE = re.compile(r"^\.(?P<name>.+)\.lock$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

Row = tuple[Path, str, bool, str]  # (file, check, ok, what was confirmed or the problem)


def is_triton_model(folder: Path) -> bool:
    """A folder Triton would take for a model: it holds a config.pbtxt (of any file type) or a version folder."""
    return os.path.lexists(folder / CONFIG) or (MODEL_NAME_RE.match(folder.name) is not None and folder.is_dir())


def is_triton_repository(path: Path) -> bool:
    """A Triton model folder, or a folder holding one (or what a killed export left of one)."""
    if is_triton_model(path):
        return True
    return any(
        MODEL_NAME_RE.match(_model_of(p.name)) or (p.is_dir() and os.path.lexists(p / CONFIG)) for p in path.iterdir()
    )


def _model_of(name: str) -> str:
    """The model folder an entry of the repository belongs to (itself, or its lock / stage / aside folder)."""
    for pattern in (TEMP_RE, ASIDE_RE, _LOCK_RE):
        if match := pattern.match(name):
            return match["name"]
    return name


def check_repository(root: Path) -> list[Row]:
    """Every entry under ``root`` (a repository, or one model folder), as rows for `fnnkit verify`."""
    if os.path.lexists(root / CONFIG) or MODEL_NAME_RE.match(root.name):
        return check_model(root)
    rows: list[Row] = []
    models = 0
    for entry in sorted(root.iterdir()):
        if (row := _root_entry(entry)) is not None:
            rows.append(row)
        else:
            models += 1
            rows += check_model(entry)
    if not models and not rows:
        raise ArtifactError(f"{root} holds no Triton model folders (<name>/{CONFIG} and <name>/{VERSION}/)")
    return rows


def _root_entry(entry: Path) -> Row | None:
    """None for a model folder to check; otherwise the row that says what the entry is."""
    name = entry.name
    if entry.is_symlink():
        return entry, "regular entries", False, f"{entry} is a symlink (to {os.readlink(entry)}); fnnkit writes none"
    if (lock := _LOCK_RE.match(name)) and MODEL_NAME_RE.match(lock["name"]) and entry.is_file():
        return entry, "lock file", True, f"serialises writers of {lock['name']}"
    for pattern in (TEMP_RE, ASIDE_RE):
        match = pattern.match(name)
        if match and MODEL_NAME_RE.match(match["name"]):
            pid = int(match["pid"])
            if pid_alive(pid):
                return entry, "interrupted write", True, f"being written by process {pid}"
            return (
                entry,
                "interrupted write",
                False,
                (
                    f"{entry} was left by an export killed mid-write (process {pid} is gone); run "
                    "`fnnkit export --format triton` into this folder again: it repairs the model folder first"
                ),
            )
    if MODEL_NAME_RE.match(name) and entry.is_dir():
        return None
    what = "a folder" if entry.is_dir() else "a file"
    return (
        entry,
        "written by fnnkit",
        False,
        (f"{entry} is {what} fnnkit did not write (Triton takes every folder here for a model); remove it"),
    )


def check_model(folder: Path, name: str | None = None) -> list[Row]:
    """One model folder: its entries, config, ONNX file and labels, each a row (``name``: the model's, for a
    folder staged under another name)."""
    match = MODEL_NAME_RE.match(name or folder.name)
    if folder.is_symlink() or not folder.is_dir():
        return [(folder, "model folder", False, f"{folder} is not a plain folder; fnnkit writes one")]
    if match is None:
        return [(folder, "model folder", False, f"{name or folder.name!r} is not a name fnnkit gives a model folder")]
    rows = _entries(folder)
    config_row, config = _config(folder, match)
    rows.append(config_row)
    model = folder / VERSION / ONNX_IN_REPO
    rows += _model_file(model, config, match)
    rows.append(_labels(folder, match["dataset"]))
    return rows


def _entries(folder: Path) -> list[Row]:
    """Exactly config.pbtxt, labels.txt and 1/model.onnx: any other file or version folder is a problem."""
    rows: list[Row] = []
    names = {e.name: e for e in os.scandir(folder)}
    for name, entry in sorted(names.items()):
        path = Path(entry.path)
        if name == VERSION and entry.is_dir(follow_symlinks=False):
            for inner in sorted(os.scandir(entry.path), key=lambda e: e.name):
                if inner.name != ONNX_IN_REPO:
                    rows.append((Path(inner.path), "written by fnnkit", False,
                                 f"{inner.path} is not written by fnnkit; Triton's onnxruntime backend may load it: "
                                 "remove it"))  # fmt: skip
        elif name not in (CONFIG, LABELS):
            why = (
                "a version folder fnnkit did not write: Triton serves the newest version, so it would serve this"
                if name.isdigit()
                else "not written by fnnkit"
            )
            rows.append((path, "written by fnnkit", False, f"{path} is {why}; remove it"))
    if VERSION not in names or not names[VERSION].is_dir(follow_symlinks=False):
        rows.append((folder / VERSION, "version folder", False,
                     f"{folder / VERSION}/ is missing (or not a folder): fnnkit writes its model as version 1; "
                     "re-export"))  # fmt: skip
    if not rows:
        rows.append((folder, "files", True, f"exactly {CONFIG}, {LABELS} and {VERSION}/{ONNX_IN_REPO}"))
    return rows


def parse_config(path: Path, data: bytes | None = None):
    """config.pbtxt parsed with Triton's own ModelConfig protobuf schema (shipped by tritonclient)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ArtifactError(f"cannot check {path}: Triton's schema is not installed; {TRITON_EXTRA}") from None
    if data is None:
        data = read_regular(path, MAX_CONFIG_BYTES, "Triton config")
    try:
        return text_format.Parse(data.decode("utf-8"), model_config_pb2.ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{path} does not parse as Triton's ModelConfig: {str(exc)[:200]}") from None


def _config(folder: Path, match: re.Match):
    """(row, parsed config or None): the config must be the one fnnkit writes for its own settings."""
    path = folder / CONFIG
    try:
        config = parse_config(path)
        expected = parse_config(path, _expected_config(config, match.string, bool(match["int8"])).encode())
    except ArtifactError as exc:
        return (path, "config", False, str(exc)), None
    if config == expected:
        return (path, "config", True, f"exactly what fnnkit writes for {match.string} (ModelConfig parsed)"), config
    found, wanted = _fields(config), _fields(expected)
    differing = sorted(n for n in set(found) | set(wanted) if found.get(n) != wanted.get(n))
    return (path, "config", False,
            f"{path} sets field(s) fnnkit does not write, or writes otherwise: {', '.join(differing)}; Triton "
            "acts on every field, so re-export the model with fnnkit"), None  # fmt: skip


def _fields(message) -> dict:
    return {field.name: value for field, value in message.ListFields()}


def _expected_config(config, name: str, int8: bool) -> str:
    """What fnnkit writes for this config's own serving settings and recorded hashes."""
    from tritonclient.grpc import model_config_pb2 as mc

    groups, warmups = list(config.instance_group), list(config.model_warmup)
    kind = mc.ModelInstanceGroup.Kind.Name(groups[0].kind) if groups else "KIND_CPU"
    try:
        settings = TritonSettings(
            max_batch_size=config.max_batch_size,
            queue_delay_us=config.dynamic_batching.max_queue_delay_microseconds,
            preferred_batch_sizes=tuple(config.dynamic_batching.preferred_batch_size),
            instances=groups[0].count if groups else 1,
            kind=kind if kind in ("KIND_CPU", "KIND_GPU") else "KIND_CPU",
            warmup_batch=warmups[0].batch_size if warmups else 64,
        )
    except ConfigError as exc:
        raise ArtifactError(f"config.pbtxt of {name}: {exc}; re-export it") from None
    weights = _recorded(config, WEIGHTS_KEY)
    onnx = _recorded(config, ONNX_KEY)
    return config_text(name, settings, weights, onnx, int8)


def _recorded(config, key: str) -> str:
    value = config.parameters[key].string_value if key in config.parameters else ""
    return value if _SHA256_RE.match(value) else "0" * 64  # a missing or malformed record differs: named


def _model_file(model: Path, config, match: re.Match) -> list[Row]:
    """The ONNX file: bounded regular-file read, sha256 against the config, the loaders' vetting."""
    from fnnkit.export import FORMATS
    from fnnkit.variants import VARIANTS

    if not os.path.lexists(model):
        return [(model, "model file", False, f"{model} is missing; re-export")] if model.parent.is_dir() else []
    try:
        data = read_regular(model, MAX_EXPORT_BYTES, "Triton model")
    except ArtifactError as exc:
        return [(model, "regular file", False, str(exc))]
    rows: list[Row] = []
    actual = sha256_bytes(data)
    if config is not None:
        recorded = config.parameters[ONNX_KEY].string_value
        if actual == recorded:
            rows.append((model, "sha256", True, f"{model.name} matches {ONNX_KEY} {recorded[:16]}..."))
        else:
            rows.append((model, "sha256", False,
                         f"{model}: sha256 {actual[:16]}... is not the {ONNX_KEY} in {CONFIG}; re-export"))  # fmt: skip
    fmt = FORMATS["onnx-int8-static" if match["int8"] else "onnx"]
    spec = VARIANTS.get(match["variant"])
    try:
        fmt.vet(data, model, spec)
    except (ArtifactError, ExportError) as exc:
        return [*rows, (model, "onnx graph", False, str(exc))]
    return [*rows, (model, "onnx graph", True, f"the loaders' {fmt.name} vetting passed: interface, ops, shapes")]


def _labels(folder: Path, dataset: str) -> Row:
    path = folder / LABELS
    try:
        data = read_regular(path, MAX_LABELS_BYTES, "Triton labels file")
    except ArtifactError as exc:
        return path, "labels", False, str(exc)
    if data != labels_text(dataset).encode():
        return (
            path,
            "labels",
            False,
            (
                f"{path} is not {dataset}'s {len(labels_text(dataset).split(chr(10))) - 1} class names in logit order "
                "(Triton names each answer from this file); re-export"
            ),
        )
    return path, "labels", True, f"{dataset}'s classes in logit order"
