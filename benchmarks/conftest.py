"""pytest-benchmark suites over the backend registry: ``pytest benchmarks --benchmark-only``.

Artifacts: with ``--artifacts DIR`` the suites use the trained and exported models there
(``make train-all export-all``); without it they train every variant briefly on the bundled
sample and export it into a temporary folder, once per session, so a fresh clone works.

Options: ``--variants A,E`` (default all), ``--batch-sizes 1,64,1024,8192``, ``--devices cpu,cuda``
(a device without hardware is skipped with the reason), ``--artifacts DIR``.
"""

from __future__ import annotations

import os

# torch's OpenMP threads sleep when idle (ONNX Runtime's spinning is off too); must be set before torch
# loads. On a shared 2-core machine spinning threads made 2-thread eager calls 10-100x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from fnnkit.backends import get_backend
from fnnkit.bench import BenchConfig, parse_batch_sizes, plan, prepare_artifacts
from fnnkit.bench.measure import hold_freed_memory
from fnnkit.data import load_test_set
from fnnkit.store import find_variant_dir, read_model_card


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fnnkit", "fnnkit benchmark selection")
    group.addoption("--variants", default="all", help="variants to benchmark: A,E or all")
    group.addoption("--batch-sizes", default="1,64,1024,8192", help="comma list of batch sizes")
    group.addoption("--devices", default="cpu,cuda", help="devices: cpu,cuda (no GPU: cuda cases skip)")
    group.addoption("--artifacts", default=None, help="use trained+exported models here instead of preparing them")


@dataclass(frozen=True)
class Case:
    variant: str
    backend: str
    device: str
    batch: int

    @property
    def id(self) -> str:
        return f"{self.variant}-{self.backend}-{self.device}-b{self.batch}"


def _config(pytestconfig: pytest.Config, artifacts: str = "artifacts"):  # made absolute by BenchConfig
    return BenchConfig(
        variants=tuple(pytestconfig.getoption("variants").split(",")),
        devices=tuple(d.strip() for d in pytestconfig.getoption("devices").split(",")),
        batch_sizes=parse_batch_sizes(pytestconfig.getoption("batch_sizes")),
        artifacts=artifacts,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Variant x backend x device x batch size, from the registries: a new backend is benchmarked too."""
    if "case" not in metafunc.fixturenames:
        return
    config = _config(metafunc.config)
    cases = [
        Case(v, b, d, n)
        for v in config.variants
        for b in config.backends
        for d in config.devices
        for n in config.batch_sizes
    ]
    metafunc.parametrize("case", cases, ids=[c.id for c in cases])


@pytest.fixture(scope="session")
def bench_config(pytestconfig, tmp_path_factory):
    """The selection, pointing at artifacts that exist: given by --artifacts, or prepared once here."""
    given = pytestconfig.getoption("artifacts")
    if given:
        config = _config(pytestconfig, given)  # BenchConfig makes the path absolute
        _, skipped = plan(config.artifacts, config.variants, config.dataset, config.backends, config.devices)
        missing = [s.reason for s in skipped if s.missing]
        if missing:
            pytest.exit("--artifacts lacks files:\n" + "\n".join(dict.fromkeys(missing)), returncode=2)
        return config
    config = _config(pytestconfig, str(tmp_path_factory.mktemp("bench-artifacts")))
    prepare_artifacts(config.model_copy(update={"dataset": "mnist-sample"}))
    return config


@pytest.fixture(scope="session", autouse=True)
def steady_allocator() -> str:
    """The same allocator settings as `fnnkit bench` workers: see fnnkit.bench.measure.hold_freed_memory."""

    return hold_freed_memory()


@pytest.fixture(scope="session")
def test_inputs(bench_config):
    """Real test images of the dataset the models were trained on, preprocessed once."""

    folder = find_variant_dir(bench_config.artifacts, bench_config.variants[0], bench_config.dataset)
    inputs, _labels = load_test_set(read_model_card(folder), bench_config.data_dir)
    return inputs


@pytest.fixture(scope="session")
def predictors(bench_config):
    """Predictors loaded on first use and kept: one per (variant, backend, device, threads)."""

    cache: dict[tuple, object] = {}

    def get(case: Case, threads: int):
        key = (case.variant, case.backend, case.device, threads)
        if key not in cache:
            folder: Path = find_variant_dir(bench_config.artifacts, case.variant, bench_config.dataset)
            cache[key] = get_backend(case.backend).load(folder, case.device, threads)
        return cache[key]

    return get
