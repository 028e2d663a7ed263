"""Small tools the robustness tests share: forging records, running children, reading results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from fnnkit.store import EXPORT_MANIFEST, MODEL_CARD, WEIGHTS_FILE, sha256_file

REPO = Path(__file__).resolve().parents[2]


def rerecord_weights(folder: Path) -> None:
    """Record the current model.safetensors sha256 in model.json, as an attacker who rewrote both would."""
    card = json.loads((folder / MODEL_CARD).read_text())
    card["weights"]["sha256"] = sha256_file(folder / WEIGHTS_FILE)
    (folder / MODEL_CARD).write_text(json.dumps(card))


def rerecord_export(folder: Path, key: str) -> None:
    """Record the current sha256 of an exported file in export.json (the forger's second step)."""
    manifest = json.loads((folder / EXPORT_MANIFEST).read_text())
    entry = manifest["formats"][key]
    entry["sha256"] = sha256_file(folder / entry["file"])
    (folder / EXPORT_MANIFEST).write_text(json.dumps(manifest))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every regular file's bytes, temp files and the lock excluded: what "byte-identical" compares."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and ".tmp-" not in p.name
            and p.name != ".lock"}  # fmt: skip


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def problems(checks: list, file: Path | None = None) -> list[str]:
    """Problem messages of failed checks (on one file, if given)."""
    return [c.problem for c in checks if not c.ok and (file is None or c.file == file)]


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONPATH": str(REPO), **extra}


def run_python(code: str, *args: str, timeout: float = 120, flags: tuple[str, ...] = (), env: dict | None = None
               ) -> subprocess.CompletedProcess:  # fmt: skip
    """A child Python: whatever it does (segfault included) is a return code here, not a dead test process."""
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, env=env or child_env(), cwd=REPO,
    )  # fmt: skip


def last_json(result: subprocess.CompletedProcess) -> dict:
    """The JSON object a child printed as its last stdout line."""
    assert result.returncode == 0, (
        f"child exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )  # noqa: E501
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_for(predicate: Callable[[], bool], child: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if child.poll() is not None:
            raise AssertionError(f"child ended (exit {child.returncode}) too early:\n{child.stderr.read()[-4000:]}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("child never reached the point it was meant to stop at")
        time.sleep(0.05)


def kill_9(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
