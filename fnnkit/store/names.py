"""The names of the files in a variant folder and the schema ids of their records (no imports: everything
in the store, and the CLI's ``--help``, can name them without loading a schema)."""

WEIGHTS_FILE = "model.safetensors"
MODEL_CARD = "model.json"
EXPORT_MANIFEST = "export.json"
MODEL_SCHEMA = "fnnkit.model/1"
EXPORT_SCHEMA = "fnnkit.export/1"
