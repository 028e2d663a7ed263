"""The trust layer: where artifacts live, how they are written (atomically) and read back (verified).

``io`` bounded reads and the checks before a write; ``locks`` the per-folder lock and the tidying of
what dead writers left; ``commit`` atomic single- and multi-file writes; ``names`` the layout's file
names; ``records`` the model card and export manifest as pydantic models (imported when a record is
read, so ``fnnkit --help`` loads no schema); ``artifact`` the ``Artifact(root, dataset, variant)`` type.
The names below are the ones the rest of fnnkit imports.
"""

from fnnkit.store.artifact import (
    CHANCE_FACTOR,
    DATASET_PREFERENCE,
    FAR_BELOW_POINTS,
    Artifact,
    canonical_safetensors,
    export_command,
    find_variant_dir,
    load_trained,
    read_model_card,
    refuse_worse,
    save_trained,
    train_command,
    trained_datasets,
    variant_dir,
)
from fnnkit.store.commit import atomic_write, atomic_write_bytes, atomic_write_json, commit_files, json_bytes
from fnnkit.store.io import (
    MAX_EXPORT_BYTES,
    MAX_JSON_DEPTH,
    MAX_RECORD_BYTES,
    check_output_path,
    ensure_writable_dir,
    open_regular,
    parse_json,
    read_json,
    read_regular,
    read_verified,
    refuse_non_regular,
    sha256_bytes,
    sha256_file,
)
from fnnkit.store.locks import ASIDE_RE, TEMP_RE, folder_lock, lock_path, pid_alive, recover_swaps, sweep_stale_temps
from fnnkit.store.names import EXPORT_MANIFEST, EXPORT_SCHEMA, MODEL_CARD, MODEL_SCHEMA, WEIGHTS_FILE

__all__ = [
    "ASIDE_RE",
    "CHANCE_FACTOR",
    "DATASET_PREFERENCE",
    "EXPORT_MANIFEST",
    "EXPORT_SCHEMA",
    "FAR_BELOW_POINTS",
    "MAX_EXPORT_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_RECORD_BYTES",
    "MODEL_CARD",
    "MODEL_SCHEMA",
    "TEMP_RE",
    "WEIGHTS_FILE",
    "Artifact",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "canonical_safetensors",
    "check_output_path",
    "commit_files",
    "ensure_writable_dir",
    "export_command",
    "find_variant_dir",
    "folder_lock",
    "json_bytes",
    "load_trained",
    "lock_path",
    "open_regular",
    "parse_json",
    "pid_alive",
    "read_json",
    "read_model_card",
    "read_regular",
    "read_verified",
    "recover_swaps",
    "refuse_non_regular",
    "refuse_worse",
    "save_trained",
    "sha256_bytes",
    "sha256_file",
    "sweep_stale_temps",
    "train_command",
    "trained_datasets",
    "variant_dir",
]
