"""A tune's pick as a deployment: the Triton model repository that serves it, checked before it is written.

Triton serves ONNX files through its onnxruntime backend, so the repository gets the best
deployment the tune measured on an ONNX Runtime backend (the pick itself when it is one): its max
batch as ``max_batch_size`` and ``preferred_batch_size``, its queue delay, its workers as the
instance count.
"""

from __future__ import annotations

from pathlib import Path

from fnnkit.errors import ConfigError
from fnnkit.export.triton import TritonModel, TritonSettings, config_text, model_name, write_repository
from fnnkit.export.triton_check import check_model, parse_config

TRITON_FORMATS = {"onnxruntime": "onnx", "onnxruntime-int8-static": "onnx-int8-static"}  # backend -> file it serves


def triton_choice(record: dict) -> dict | None:
    """The pick when Triton serves it; else the best measured deployment Triton can serve: full-length
    measurements first, then by peak, never one whose full-length search confirmed nothing."""
    pick = record["pick"]
    if pick is not None and pick["deployment"]["backend"] in TRITON_FORMATS:
        return pick
    failed = [  # a search the budget cut short found nothing either way: not a failure
        t["deployment"] for t in record["trials"] if t["fidelity"] == "full" and not t["peak_qps"] and not t.get("cut")
    ]
    served = [
        t for t in record["trials"]
        if t["deployment"]["backend"] in TRITON_FORMATS and t["peak_qps"] and t["deployment"] not in failed
    ]  # fmt: skip
    return max(served, key=lambda t: (t["fidelity"] == "full", t["peak_qps"]), default=None)


def triton_settings(trial: dict) -> TritonSettings:
    d = trial["deployment"]
    return TritonSettings(
        max_batch_size=d["max_batch"],
        queue_delay_us=d["max_queue_delay_us"],
        preferred_batch_sizes=(d["max_batch"],),
        instances=d["workers"],
        warmup_batch=d["max_batch"],
    )


def write_triton(record: dict, folder: Path, out: Path) -> tuple[dict, TritonModel]:
    """(the deployment written, its model folder): the config parses with Triton's schema before anything is
    written, and the staged folder passes `fnnkit verify`'s checks before it replaces an earlier one as one unit
    (a failed check leaves the earlier one as it was)."""
    trial = triton_choice(record)
    if trial is None:
        measured = {x["deployment"]["backend"] for x in (*record["trials"], *record["votes"])}
        tried = sorted(measured & set(TRITON_FORMATS))
        raise ConfigError(
            f"--write-triton: {', '.join(tried)} measured, but none confirmed a peak under the bound, so no Triton "
            f"repository was written; raise --budget-s, or tune on a quieter machine"
            if tried
            else f"--write-triton: the tune measured no ONNX Runtime deployment (Triton serves "
            f"{', '.join(TRITON_FORMATS)}); include one in --backends"
        )
    settings, fmt = triton_settings(trial), TRITON_FORMATS[trial["deployment"]["backend"]]
    name = model_name(record["dataset"], record["variant"], fmt)
    parse_config(out / name / "config.pbtxt", config_text(name, settings, "0" * 64, "0" * 64, fmt != "onnx").encode())

    def check(staged: Path, name: str) -> None:
        """`fnnkit verify`'s checks on the staged folder, before it replaces the live one."""
        failed = [f"{path}: {what}" for path, _, ok, what in check_model(staged, name) if not ok]
        if failed:
            said = "; ".join(failed[:3]).replace(str(staged), str(out / name))
            raise ConfigError(f"--write-triton: the model written for {out / name} does not check, so nothing there "
                              f"was replaced: {said}")  # fmt: skip

    (model,) = write_repository(folder, out, settings, formats=(fmt,), check=check)
    return trial, model


def write_serve(record: dict, path: Path) -> dict:
    """The pick as the deployment `fnnkit serve --config` runs, checked against its schema before it is written
    (atomically, so an earlier file survives a failure). Returns the deployment written."""
    from fnnkit.serve.app_config import SERVE_FILE_SCHEMA, MadeOn, ServeFile
    from fnnkit.store import atomic_write_json

    if record["pick"] is None:
        raise ConfigError("--write-serve: no deployment met the bound, so there is nothing to serve")
    d = record["pick"]["deployment"]
    config = ServeFile(
        schema=SERVE_FILE_SCHEMA, variant=record["variant"], dataset=record["dataset"], backend=d["backend"],
        workers=d["workers"], max_batch=d["max_batch"], batch_wait_ms=d["max_queue_delay_us"] / 1000,
        made_on=MadeOn(cpu=record["environment"]["cpu"], flags=tuple(record["machine"]["flags"])),
        source=f"fnnkit tune run {record['run_id']}",
    )  # fmt: skip
    atomic_write_json(path, config.model_dump(mode="json"))
    return record["pick"]
