"""Every table the commands print, and the printing helpers they share.

Command modules choose *what* to show; this module decides *how* it looks, so one look
(natural-width tables, µs/ms units, green for the best) holds across commands.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # types only: importing them would load torch, and `fnnkit --help` must stay fast
    from fnnkit.train import TrainRecord

MAX_TABLE_WIDTH = 4000  # columns a table may take: far more than any table here, so none is ever cut


class WholeTables(Console):
    """A console that prints every table whole, at its natural width.

    Why: rich fits a table into the console's width by cutting cells (``ex…``, ``1,8…``), and a console
    that is not a terminal (a pipe, a file, a CI log) is 80 columns to rich. A table wider than the
    console is printed wider instead: in a log every digit is there; in a narrow terminal its lines wrap.
    """

    def print(self, *objects, **kwargs) -> None:
        tables = [o for o in objects if isinstance(o, Table)]
        if not tables:
            return super().print(*objects, **kwargs)
        wide = self.options.update_width(MAX_TABLE_WIDTH)
        natural = max(Measurement.get(self, wide, table).maximum for table in tables)
        kept = self._width  # None: rich asks the terminal (or COLUMNS) again after this table
        self.width = max(self.width, natural)  # rich clamps print(width=) to the console's width
        try:
            super().print(*objects, **kwargs)
        finally:
            self._width = kept


console = WholeTables()
err_console = WholeTables(stderr=True)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # C0, DEL, C1, bidi


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` safe to print: rich markup escaped, and control characters (a newline or an escape sequence in a
    file name, a bidi override) shown as ``\\n`` / ``\\x1b`` / ``\\u202e`` instead of acting on the terminal.
    ``keep_newlines`` for fnnkit's own multi-line messages."""

    def show(match: re.Match) -> str:
        char = match.group()
        if char == "\n" and keep_newlines:
            return char
        return repr(char)[1:-1] if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    return escape(_CONTROL.sub(show, text))


def wrote(paths: Sequence[Path | str], tail: str = "") -> None:
    """The one line that ends a command that wrote files."""
    console.print("wrote " + ", ".join(f"[bold]{p}[/]" for p in paths) + tail)


def progress_bars(*counters: ProgressColumn) -> Progress:
    """Bars that stay on screen when done: what, a bar, ``counters`` (done of total, bytes), time taken."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), *counters, TimeElapsedColumn(), console=console
    )


@contextlib.contextmanager
def fetch_progress() -> Iterator:
    """A progress callback for fnnkit.data fetches: one bar per file, created on its first report."""
    with progress_bars(DownloadColumn()) as bars:
        tasks: dict[str, int] = {}

        def show(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=total)
            bars.update(tasks[name], completed=done, total=total)

        yield show


# --------------------------------------------------------------------------- train, evaluate, info, data


def training_table(records: Sequence[TrainRecord]) -> Table:
    from fnnkit.train import published_accuracy  # the training module loads torch: not at `--help` time

    datasets = sorted(
        {f"{r.dataset.name} ({r.dataset.train_size:,} train / {r.dataset.test_size:,} test)" for r in records}
    )
    devices = ", ".join(sorted({r.device for r in records}))
    # no vertical rules: the table (and its "diff" column) fits an 80-column terminal
    title = f"Training results, test accuracy %: {', '.join(datasets)} on {devices}"
    table = Table(title=title, title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    # "paper": the tutorial's published accuracy, shown only for a comparable run (full MNIST, its recipe)
    columns = ("variant", "network", "final", "paper", "diff", "best", "wall s", "samples/s")
    for column in columns:
        table.add_column(column, justify="left" if column in ("variant", "network") else "right", no_wrap=True)
    best = max(r.test_accuracy for r in records) if records else None
    for r in records:
        final = f"{r.test_accuracy:.2f}"
        published = published_accuracy(r)
        table.add_row(
            r.spec.name,
            f"{r.spec.hidden_layers}x{r.spec.hidden_dim} {r.spec.activation}",
            f"[bold green]{final}[/]" if r.test_accuracy == best else final,
            "-" if published is None else f"{published:.0f}",
            "-" if published is None else f"{r.test_accuracy - published:+.2f}",
            f"{r.best_test_accuracy:.2f}",
            f"{r.train_seconds:.1f}",
            f"{r.samples_per_second:,.0f}",
        )
    return table


def evaluate_table(rows: Sequence[tuple[str, str, float, float, str, str]]) -> Table:
    """(variant, dataset, recorded %, measured %, backend, device) per evaluated variant."""
    table = Table(title="Test accuracy", title_style="bold")
    for column in ("variant", "dataset", "recorded %", "measured %", "backend", "device"):
        table.add_column(column, justify="left" if column in ("variant", "dataset", "backend", "device") else "right")
    for variant, dataset, recorded, measured, backend, device in rows:
        table.add_row(variant, dataset, f"{recorded:.2f}", f"{measured:.2f}", backend, device)
    return table


def environment_table(env: dict, datasets: dict[str, str], trained: str) -> Table:
    """Versions, CPU, GPU, datasets and trained models: what `fnnkit info` knows about this machine."""
    table = Table(title="fnnkit environment", title_style="bold", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, version in env["versions"].items():
        table.add_row(name, str(version))
    table.add_row("cpu", f"{env['cpu']} ({env['cores']} cores, torch threads {env['torch_threads']})")
    gpu = env["gpu"]
    table.add_row("cuda device", f"{gpu['name']} ({gpu['memory_gib']} GiB, driver {gpu['driver']})" if gpu else "none")
    for name, status in datasets.items():
        table.add_row(f"dataset {name}", status)
    table.add_row("trained models", trained)
    return table


def datasets_table(folder: Path, statuses: Sequence) -> Table:
    table = Table(title=f"Datasets (data folder {folder})", title_style="bold")
    for column in ("dataset", "here", "where", "content"):
        table.add_column(column, overflow="fold")
    for row in statuses:
        table.add_row(row.name, "yes" if row.present else "no", row.where, row.verified)
    return table


# --------------------------------------------------------------------------- export, verify, predict


def export_table(results) -> Table:
    """Variant x format: what was written, how long it took, how closely it matches eager."""
    table = Table(title="Exports (parity on the whole test set vs eager PyTorch)", title_style="bold")
    columns = ("variant", "format", "file", "size", "export s", "max |Δ|", "agreement %", "accuracy %", "Δ acc")
    for column in columns:
        table.add_column(column, justify="left" if column in ("variant", "format", "file") else "right", no_wrap=True)
    for r in results:
        p = r.parity
        style = "" if p["passed"] else "red"
        table.add_row(
            r.variant,
            r.format,
            r.path.name,
            f"{r.bytes / 1024:,.0f} KiB",
            "reused" if r.status == "reused" else f"{r.export_seconds:.2f}",
            f"{p['max_abs_diff']:.1e}",
            f"{p['agreement']:.2f}",
            f"{p['accuracy']:.2f}",
            f"{p['accuracy_delta']:+.2f}",
            style=style,
        )
    return table


def triton_table(out: Path, models: Sequence, instances: int) -> Table:
    table = Table(title=f"Triton model repository {out}", title_style="bold")
    for column in ("model", "from", "onnx sha256", "instances"):
        table.add_column(column, no_wrap=True)
    for model in models:
        table.add_row(model.name, model.format, model.onnx_sha256[:16] + "...", str(instances))
    return table


def verify_table(checks: list, root: Path) -> Table:
    """File (relative to what was asked for), check, and ok with what was confirmed, or the problem."""
    table = Table(title=f"fnnkit verify {root}", title_style="bold")
    table.add_column("file", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    base = root if root.is_dir() else root.parent
    for c in checks:
        try:
            shown = str(c.file.relative_to(base))
        except ValueError:
            shown = str(c.file)
        result = (
            f"[green]ok[/] [dim]{printable(c.note)}[/]" if c.ok else f"[bold red]problem:[/] {printable(c.problem)}"
        )
        table.add_row(printable(shown), c.check, result)
    return table


def predict_table(results, model, explain: bool) -> Table:
    """File, predicted class and probability, runner-up(s), and with --explain the normalisation steps."""
    card = model.card
    table = Table(
        title=f"fnnkit predict: variant {card['variant']['name']} on {card['dataset']['name']} "
        f"({model.predictor.backend})",
        title_style="bold",
    )
    for column in ("file", "predicted", "probability", "runner-up"):
        table.add_column(column, justify="right" if column == "probability" else "left", no_wrap=column != "file")
    if explain:
        table.add_column("normalisation")
    for r in results:
        (best, p), rest = r.top[0], r.top[1:]
        runner_up = ", ".join(f"{c} ({q:.1%})" for c, q in rest) or "-"
        row = [printable(r.name), f"[bold]{printable(best)}[/]", f"{p:.1%}", printable(runner_up)]
        table.add_row(*row, *([printable("; ".join(r.steps))] if explain else []))
    return table


# --------------------------------------------------------------------------- backends, coldstart, bench


def backends_table(backends: Sequence, devices: Sequence[str]) -> Table:
    """Every backend on every device; ``backends`` holds (backend, [(ok, reason) per device])."""
    table = Table(title="Backends", title_style="bold")
    table.add_column("backend", no_wrap=True)
    for column in ("precision", "runs", *devices):
        table.add_column(column)
    for backend, verdicts in backends:
        cells = [f"[green]yes[/] [dim]{reason}[/]" if ok else f"[yellow]no[/]: {reason}" for ok, reason in verdicts]
        table.add_row(backend.name, backend.precision, backend.summary, *cells)
    return table


def coldstart_table(results: Sequence, variant: str, threads: int, repeats: int) -> Table:
    table = Table(title=f"Cold start, variant {variant}, {threads} thread(s), {repeats} fresh processes each")
    table.add_column("backend", no_wrap=True)
    for phase in ("import", "load", "first", "total"):
        table.add_column(f"{phase} p50 ms", justify="right")
    table.add_column("total p90 ms", justify="right")
    for r in results:
        cells = [f"{r.p50_s[p] * 1e3:.1f}" if p in r.p50_s else "-" for p in ("import", "load", "first", "total")]
        table.add_row(r.name, *cells, f"{r.p90_s['total'] * 1e3:.1f}")
    return table


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} µs" if value < 1000 else f"{value / 1000:.2f} ms"


def _rate(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _trust(rows: list) -> str:
    """What, if anything, makes a backend's numbers doubtful, and at which batch sizes."""
    checks = (
        ("unstable", lambda r: not r.trust.stable), ("wide", lambda r: r.trust.wide),
        ("contended", lambda r: r.trust.contended),
    )  # fmt: skip
    problems = []
    for label, failed in checks:
        sizes = [str(r.batch_size) for r in rows if failed(r)]
        if sizes:
            problems.append(f"{label} b{','.join(sizes)}")
    if any(r.trust.contended for r in rows):
        problems[-1] += f" ({max(r.trust.busy_cores for r in rows):.1f} cores busy elsewhere)"
    return "[yellow]" + "; ".join(problems) + "[/]" if problems else "[green]ok[/]"


def print_run(run, config) -> None:
    env = run.header.environment
    console.print(
        f"[bold]{env['cpu']}[/], {env['cores']} cores; threads {run.threads['policy']}; each backend "
        f"{'in its own process' if run.isolation == 'subprocess' else 'in this process'}"
    )
    for c in run.ceilings:
        console.print(
            f"matmul ceiling {c.device} {c.threads} thread(s), {c.precision}: [bold]{c.gflops:.0f} GFLOP/s[/] "
            f"({c.size}³; median of {c.samples} repetitions, spread {c.spread:.0%})"
        )
    for device in config.devices:
        rows = [r for r in run.rows if r.device == device]
        if rows:
            show(_latency_table(device, rows, config.batch_sizes[0]))
            show(_throughput_table(device, rows, config.batch_sizes))
    suspect = sorted({f"{r.backend} b{r.batch_size}" for r in run.rows if r.versus and r.versus.ceiling_suspect})
    if suspect:
        console.print(
            f"[yellow]measurement error:[/] {', '.join(suspect)} ran above the matmul ceiling: that ceiling was "
            "measured low (a busy moment; see its spread) or the 2048³ matmul is not this machine's limit for such "
            "a row; no share is shown for them.",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    if run.skipped:
        show(skipped_table(run.skipped))
    show(_recommendation_table(run, config.batch_sizes))


def skipped_table(skipped: list) -> Table:
    """One line per (device, reason), naming every backend it applies to: a GPU-less machine gets one line."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for s in skipped:
        names = reasons.setdefault((s.device, s.reason), [])
        if s.backend not in names:
            names.append(s.backend)
    table = Table(title="Not measured here", title_style="bold")
    for column in ("device", "backends", "reason"):
        table.add_column(column)
    for (device, reason), names in reasons.items():
        table.add_row(device, ", ".join(names), reason)
    return table


def show(table: Table) -> None:
    """Print a table whole (every console here does: ``WholeTables``)."""
    console.print(table)


def _backends(rows: list) -> list[tuple[str, str, dict[int, object]]]:
    """(variant, backend, {batch: row}) in measurement order."""
    out: dict[tuple[str, str], dict[int, object]] = {}
    for r in rows:
        out.setdefault((r.variant, r.backend), {})[r.batch_size] = r
    return [(v, b, by_batch) for (v, b), by_batch in out.items()]


def _best(text: str, is_best: bool) -> str:
    return f"[bold green]{text}[/]" if is_best else text


def _latency_table(device: str, rows: list, batch: int) -> Table:
    """Accuracy next to latency: a fast backend that disagrees with eager is red."""
    table = Table(title=f"{device}: accuracy and latency at batch {batch}", title_style="bold")
    table.add_column("var")
    table.add_column("backend", no_wrap=True)
    on_device = any(
        r.latency.end_to_end_p50_us is not None for r in rows
    )  # GPU: copies in and out are part of a request
    extra = ("p50 end-to-end", "peak device MB") if on_device else ()
    for column in ("acc %", "max|Δ|", "setup", "p50", "p90", "p99", "spread", *extra):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("threads wait")
    table.add_column("trust")
    fastest = {
        v: min(r.latency.p50_us for r in rows if r.variant == v and r.batch_size == batch)
        for v in {r.variant for r in rows}
    }
    from fnnkit.backends import BACKENDS  # here: `fnnkit --help` imports no torch

    previous = None
    for variant, name, by_batch in _backends(rows):
        if previous is not None and variant != previous:
            table.add_section()
        previous = variant
        group = list(by_batch.values())
        row = by_batch[batch]
        if name in BACKENDS and not BACKENDS[name].batch_invariant:
            table.caption = "≠batch: a sample's answer depends on the rest of its batch; fnnkit serve refuses it"
            name = f"{name} [yellow]≠batch[/]"
        lat, parity = row.latency, row.parity
        accuracy = "-" if parity is None else f"{parity.accuracy:.2f}"
        diff = "-" if parity is None else f"{parity.max_abs_diff:.1e}"
        spread = f"{lat.spread:.0%}" if not row.trust.wide else f"[yellow]{lat.spread:.0%}![/]"
        device_cells = (_us(lat.end_to_end_p50_us), f"{row.memory.peak_device_mb or 0:.0f}") if on_device else ()
        table.add_row(
            variant, name, accuracy, diff, _setup(group), _best(_us(lat.p50_us), lat.p50_us == fastest[variant]),
            _us(lat.p90_us), _us(lat.p99_us), spread, *device_cells, row.wait_policy or "-", _trust(group),
            style="red" if parity is not None and not parity.agrees else None,
        )  # fmt: skip
    return table


def _throughput_table(device: str, rows: list, batch_sizes: tuple[int, ...]) -> Table:
    largest = batch_sizes[-1]
    table = Table(title=f"{device}: throughput, samples/s (× eager)", title_style="bold")
    table.add_column("var")
    table.add_column("backend", no_wrap=True)
    for batch in batch_sizes:
        table.add_column(f"batch {batch}", justify="right", no_wrap=True)
    table.add_column(f"of own-precision ceiling at {largest}", justify="right")
    table.add_column("peak RSS MB", justify="right")
    fastest = {
        (r.variant, r.batch_size): max(
            x.throughput for x in rows if x.variant == r.variant and x.batch_size == r.batch_size
        )
        for r in rows
    }
    previous = None
    for variant, name, by_batch in _backends(rows):
        if previous is not None and variant != previous:
            table.add_section()
        previous = variant
        cells = []
        for batch in batch_sizes:
            r = by_batch.get(batch)
            if r is None:
                cells.append("-")
                continue
            speedup = r.versus.speedup_vs_eager if r.versus else None
            text = _rate(r.throughput) + (f" ×{speedup:.1f}" if speedup else "")
            cells.append(_best(text, r.throughput == fastest[(variant, batch)]))
        last = by_batch.get(largest)
        versus = last.versus if last else None
        share = f"{versus.ceiling_share:.0%}" if versus and versus.ceiling_share is not None else "-"
        if (
            versus and versus.ceiling_suspect
        ):  # above 100%: the ceiling is wrong for this row, not a fact about the backend
            share = "[yellow]? (above ceiling)[/]"
        if last and last.precision != "fp32":
            share = f"[dim]{share} ({last.precision})[/]"  # fewer bits per FLOP: not comparable with fp32
        head = next(iter(by_batch.values()))
        disagrees = head.parity is not None and not head.parity.agrees
        table.add_row(
            variant, name, *cells, share, f"{head.memory.peak_rss_mb:.0f}", style="red" if disagrees else None
        )
    return table


def _setup(group: list) -> str:
    """Load time, plus the slowest first call (where compilers compile for a new shape)."""
    first, load_s = max(r.setup.first_call_ms for r in group), group[0].setup.load_s
    return f"{load_s:.2f}s+{first / 1000:.2f}s" if first >= 100 else f"{load_s:.2f}s+{first:.0f}ms"


def _recommendation_table(run, batch_sizes: tuple[int, ...]) -> Table:
    table = Table(title="Recommended backend (fastest whose accuracy matches eager)", title_style="bold")
    table.add_column("variant")
    table.add_column("device")
    for b in batch_sizes:
        table.add_column(f"batch {b}")
    cells: dict[tuple[str, str], dict[int, str]] = {}
    for rec in run.recommendations:
        if rec.backend is None:
            text = "[red]none matches eager[/]"
        elif rec.speedup_vs_eager is None:
            text = f"{rec.backend} ({_us(rec.p50_us)})"
        else:
            text = f"{rec.backend} ({_us(rec.p50_us)}, ×{rec.speedup_vs_eager:.1f})"
        cells.setdefault((rec.variant, rec.device), {})[rec.batch_size] = text
    for (variant, device), by_batch in cells.items():
        table.add_row(variant, device, *(by_batch.get(b, "-") for b in batch_sizes))
    return table


def print_gate(result, path: Path, threshold: float) -> None:
    """The change of every row against the baseline, and the notes about rows that cannot be compared."""
    table = Table(title=f"Change vs {path} (p50 latency; + is slower; fail above +{threshold:g}%)", title_style="bold")
    for column in ("variant", "backend", "device", "batch", "baseline", "now", "change", "trusted"):
        table.add_column(column, justify="right" if column in ("batch", "baseline", "now", "change") else "left")
    for c in result.changes:
        change = f"{c.change_pct:+.1f}%"
        table.add_row(
            c.variant, c.backend, c.device, str(c.batch_size), _us(c.baseline_p50_us), _us(c.current_p50_us),
            f"[bold red]{change}[/]" if c.regression else change, "yes" if c.trusted else "[yellow]no[/]",
        )  # fmt: skip
    show(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if result.only_baseline:
        console.print(f"[yellow]note:[/] {len(result.only_baseline)} baseline row(s) were not measured this time")


# --------------------------------------------------------------------------- bench load


def scenario_step(backend: str, r, scenario: str, calibration: bool = False) -> None:
    """One dim line per LoadGen run, as it finishes: a long search is never silent. An offline run says its
    throughput (its p99 is the whole run's queue) and ``calibration`` marks the one a search starts from; an
    INVALID run says LoadGen's first reason (an offline run sized too short is re-run, not a failure)."""
    rate = f"{r.target_qps:,.0f} q/s" if r.target_qps else scenario
    p99 = "-" if r.p() is None else f"{r.p():.3f} ms"
    if r.mode == "accuracy":
        what = f"accuracy {r.accuracy:.2f}%"
    elif scenario == "offline":
        what = f"{r.completed_qps or 0:,.0f} samples/s"
        rate = f"{'calibration' if calibration else 'offline'} {rate}"
    else:
        what = f"p99 {p99}"
    why = f" ({r.reasons[0]})" if r.reasons and not r.valid else ""
    busy = f", [yellow]{r.others_cores:.1f} cores busy elsewhere[/]" if r.contended else ""
    hung = ", [yellow]made again: its first process hung after the run[/]" if r.hung_before else ""
    line = f"[dim]{backend:>16} {rate:>12}: {what}, {_verdict(r.validity)}{why}{busy}{hung}[/]"
    console.print(line, highlight=False, soft_wrap=True)  # one line per run, also in a log


def _verdict(validity: str) -> str:
    return f"[green]{validity}[/]" if validity == "VALID" else f"[red]{validity}[/]"


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def scenario_steps_table(entry, config) -> Table:
    title = f"{entry.backend} on {entry.device}: every LoadGen run ({config.scenario}"
    title += f", p99 bound {config.latency_bound_ms:g} ms)" if config.scenario == "server" else ")"
    table = Table(title=title, title_style="bold")
    columns = ("#", "offered q/s", "done samples/s", "p50 ms", "p90 ms", "p99 ms", "batch", "busy cores", "verdict")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_column("why")
    numbered = [("offline", r) for r in entry.calibration] + [(str(i), r) for i, r in enumerate(entry.steps, 1)]
    for label, r in numbered:
        busy = f"{r.others_cores:.2f}"
        table.add_row(
            label, "-" if r.target_qps is None else f"{r.target_qps:,.0f}",
            "-" if r.completed_qps is None else f"{r.completed_qps:,.0f}",
            _ms(r.latency_ns.get("50.00")), _ms(r.latency_ns.get("90.00")), _ms(r.latency_ns.get("99.00")),
            f"{r.mean_batch:.1f}", f"[yellow]{busy}[/]" if r.contended else busy,
            _verdict(r.validity), "; ".join(r.reasons),
        )  # fmt: skip
    return table


def scenario_summary_table(run, config) -> Table:
    """Per backend: the answer (peak rate under the bound, or the run's numbers) beside the SUT's own ceiling.

    The ceiling compared against is the null SUT's offline throughput: a rate, steadier on a busy
    machine than the null SUT's own p99-bound peak, which scheduler noise can pull far down.
    """
    search = config.find_peak
    title = (
        f"Peak rate with p99 ≤ {config.latency_bound_ms:g} ms (LoadGen VALID)"
        if search
        else f"{config.scenario}: LoadGen's result"
    )
    table = Table(title=title, title_style="bold")
    columns = ["backend", "device"]
    if search:
        columns += ["peak q/s", "p99 at peak ms (runs)", "offline samples/s", "of null SUT's"]
    else:
        columns += ["samples/s", "p50 ms", "p99 ms"]
    columns += ["verdict", "accuracy % (AccuracyOnly)"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "device") else "right")
    ceiling = _offline_rate(run.overhead)
    for entry in [run.overhead, *run.results]:
        final = entry.final
        if search:
            offline = _offline_rate(entry)
            share = f"{offline / ceiling:.0%}" if offline and ceiling and entry is not run.overhead else "-"
            if entry.peak_qps is None:
                peak = [f"[red]{entry.peak_status or 'no peak'}[/]", "-"]
            else:
                peak = [f"{entry.peak_qps:,.0f}", _peak_p99(entry)]
            cells = [*peak, "-" if offline is None else f"{offline:,.0f}", share]
        else:
            rate = final.completed_qps
            cells = ["-" if rate is None else f"{rate:,.0f}", _ms(final.latency_ns.get("50.00")),
                     _ms(final.latency_ns.get("99.00"))]  # fmt: skip
        acc = entry.accuracy
        accuracy = "-" if acc is None or acc.accuracy is None else f"{acc.accuracy:.2f} ({acc.validity})"
        name = f"{entry.backend} (SUT overhead)" if entry is run.overhead else entry.backend
        table.add_row(name, entry.device, *cells, _verdict(final.validity), accuracy)
    return table


def _peak_p99(entry) -> str:
    """The p99 of every run at the peak, as its confidence: "0.91-1.20 (3/3 VALID)"."""
    runs = entry.at_peak
    p99 = sorted(r.latency_ns["99.00"] / 1e6 for r in runs if "99.00" in r.latency_ns)
    if not p99:
        return "-"
    span = f"{p99[0]:.3f}" if len(p99) == 1 else f"{p99[0]:.3f}-{p99[-1]:.3f}"
    return f"{span} ({sum(r.valid for r in runs)}/{len(runs)} VALID)"


def no_peak_line(entry, config) -> str | None:
    """One line for a search that reports no peak: what was tried, how close it came, and how busy the machine was."""
    if not config.find_peak or entry.peak_qps is not None:
        return None
    bound = f"p99 <= {config.latency_bound_ms:g} ms"
    busy = f"{entry.others_cores:.1f} cores were busy elsewhere"
    if entry.peak_status == "could not confirm a peak":
        lowest = min(r.target_qps for r in entry.steps if r.target_qps)
        votes = f"{sum(r.valid for r in entry.steps)}/{len(entry.steps)} runs VALID"
        return f"{entry.backend}: could not confirm a peak with {bound} (down to {lowest:,.0f} q/s; {votes}); {busy}"
    tried = [r for r in entry.steps if r.target_qps]
    lowest = min(tried, key=lambda r: r.target_qps) if tried else None
    if lowest is None:
        return f"{entry.backend}: no rate met {bound}; {busy}"
    p99 = lowest.p()
    had = "no p99" if p99 is None else f"p99 {p99:.1f} ms"
    return f"{entry.backend}: no rate met {bound}; lowest tried {lowest.target_qps:,.0f} q/s had {had}; {busy}"


def _offline_rate(entry) -> float | None:
    return entry.calibration[-1].completed_qps if entry.calibration else None
