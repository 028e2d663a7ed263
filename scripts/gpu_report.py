"""Collect what scripts/gpu_check.sh produced into a few files under $OUT, and print the headline numbers.

    python3 scripts/gpu_report.py --work /tmp/fnnkit-gpu --out $OUT --device cuda

Reads the artifacts trees, the per-group bench runs and the step log the check wrote under
``--work``; writes five files:

- ``train.json``      per variant: training time, samples/s, accuracy on ``--device`` and on the CPU;
- ``exports.json``    every export.json manifest (file, size, export time, parity on the device);
- ``bench-<device>.json/.csv/.png``  the bench groups merged into one run (fnnkit's own schema,
  so ``fnnkit bench --compare`` reads it), speed-ups and recommendations recomputed across groups;
- ``summary.json``    machine, versions, step outcomes, and the headline figures:
  batch-1 p50 of the best backend against eager, and large-batch throughput as a share of
  the GPU's memory bandwidth (input bytes per sample x samples/s over ``--bandwidth-tbs``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

INPUT_FEATURES = 784
HALF_INPUT = {"eager-fp16", "eager-bf16"}  # these take 2-byte inputs on the device; the rest float32


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cards(root: Path) -> dict[str, dict]:
    """variant -> model.json of every trained variant under ``root/<dataset>/<variant>``."""
    found = {}
    for card_path in sorted(root.glob("*/*/model.json")):
        card = read_json(card_path)
        if card:
            found[f"{card_path.parent.parent.name}/{card_path.parent.name}"] = card
    return found


def training(work: Path, device: str) -> dict:
    runs = {device: cards(work / "art")}
    if device != "cpu":  # the same recipe on the CPU, for the comparison
        runs["cpu"] = cards(work / "art-cpu")
    table = {}
    for key in sorted(set(runs[device]) | set(runs["cpu"])):
        entry = {}
        for where, found in runs.items():
            card = found.get(key)
            if card:
                entry[where] = {
                    "device": card.get("device"),
                    "train_seconds": card.get("train_seconds"),
                    "samples_per_second": card.get("samples_per_second"),
                    "test_accuracy": card.get("test_accuracy"),
                    "threads": card.get("threads"),
                    "iterations": card.get("hyperparameters", {}).get("iterations"),
                }
        if device != "cpu" and device in entry and "cpu" in entry and entry["cpu"]["samples_per_second"]:
            entry["speedup_vs_cpu"] = round(entry[device]["samples_per_second"] / entry["cpu"]["samples_per_second"], 3)
        table[key] = entry
    return table


def exports(work: Path) -> dict:
    return {
        f"{p.parent.parent.name}/{p.parent.name}": read_json(p) for p in sorted((work / "art").glob("*/*/export.json"))
    }


def merged_bench(work: Path):
    """The bench groups as one run: every row and skip, speed-ups vs eager and recommendations recomputed."""
    from fnnkit.bench import load_run
    from fnnkit.bench.runner import annotate, recommend

    runs = []
    for path in sorted((work / "bench").glob("*.json")):
        try:
            runs.append(load_run(path))
        except Exception as exc:  # a damaged group must not hide the others
            print(f"skipping {path}: {exc}")
    if not runs:
        return None
    ceilings = {}
    for run in runs:
        for c in run.ceilings:
            best = ceilings.get((c.device, c.threads))
            ceilings[(c.device, c.threads)] = c if best is None or c.gflops > best.gflops else best
    config = dict(runs[0].header.config)
    config["backends"] = [b for run in runs for b in run.header.config["backends"]]
    rows = annotate([r for run in runs for r in run.rows], list(ceilings.values()))  # versus recomputed over all
    measured = {(r.variant, r.backend, r.device) for r in rows}
    skipped = [s for run in runs for s in run.skipped if (s.variant, s.backend, s.device) not in measured]
    header = runs[0].header.model_copy(update={"run_id": runs[0].run_id + "-merged", "config": config})
    return runs[0].model_copy(
        update=dict(
            header=header,
            ceilings=list(ceilings.values()),
            rows=rows,
            skipped=skipped,
            recommendations=recommend(rows, config.get("accuracy_tolerance", 0.0)),
        )
    )


def headline(run, bandwidth_tbs: float) -> dict:
    """Batch-1 latency of the best backend vs eager; large-batch throughput vs the memory-bandwidth ceiling."""
    out: dict = {"bandwidth_ceiling_tb_s": bandwidth_tbs, "per_variant": {}}
    for variant in sorted({r.variant for r in run.rows}):
        rows = [r for r in run.rows if r.variant == variant]
        good = [r for r in rows if r.parity and r.parity.agrees]
        smallest, largest = min(r.batch_size for r in rows), max(r.batch_size for r in rows)
        entry: dict = {}
        at_small = sorted((r for r in good if r.batch_size == smallest), key=lambda r: r.latency.p50_us)
        eager = next((r for r in rows if r.backend == "eager" and r.batch_size == smallest), None)
        if at_small:
            best = at_small[0]
            entry[f"batch_{smallest}"] = {
                "best_backend": best.backend,
                "best_p50_us": round(best.latency.p50_us, 2),
                "eager_p50_us": round(eager.latency.p50_us, 2) if eager else None,
                "speedup_vs_eager": round(eager.latency.p50_us / best.latency.p50_us, 2) if eager else None,
                "ranking": [(r.backend, round(r.latency.p50_us, 2)) for r in at_small],
            }
        bandwidth = []
        for r in (r for r in good if r.batch_size == largest):
            bytes_per_sample = INPUT_FEATURES * (2 if r.backend in HALF_INPUT else 4)
            rate = bytes_per_sample * r.throughput
            bandwidth.append(
                {
                    "backend": r.backend,
                    "samples_per_s": round(r.throughput),
                    "input_bytes_per_sample": bytes_per_sample,
                    "input_gb_per_s": round(rate / 1e9, 1),
                    "share_of_bandwidth": round(rate / (bandwidth_tbs * 1e12), 4),
                }
            )
        bandwidth.sort(key=lambda b: -b["samples_per_s"])
        entry[f"batch_{largest}"] = bandwidth
        out["per_variant"][variant] = entry
    return out


def steps(work: Path) -> list[dict]:
    path = work / "steps.tsv"
    if not path.exists():
        return []
    names = ("step", "status", "exit_code", "seconds", "limit_s")
    return [dict(zip(names, line.split("\t"), strict=False)) for line in path.read_text().splitlines() if line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bandwidth-tbs", type=float, default=4.8, help="memory bandwidth ceiling, TB/s (H200: 4.8)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    train = training(args.work, args.device)
    (args.out / "train.json").write_text(json.dumps(train, indent=1))
    print("training (samples/s):")
    for key, entry in train.items():
        cells = [f"{where} {e['samples_per_second']:,.0f} in {e['train_seconds']:.1f}s" for where, e in entry.items()
                 if isinstance(e, dict)]  # fmt: skip
        speed = f"  x{entry['speedup_vs_cpu']}" if "speedup_vs_cpu" in entry else ""
        print(f"  {key}: {'; '.join(cells)}{speed}")

    made = exports(args.work)
    (args.out / "exports.json").write_text(json.dumps(made, indent=1))
    print("exports (parity on the export device):")
    for key, manifest in made.items():
        for name, entry in (manifest or {}).get("formats", {}).items():
            p = entry.get("parity", {})
            verdict = "pass" if p.get("passed") else "FAIL"
            print(f"  {key} {name}: {verdict}, max|Δ| {p.get('max_abs_diff')}, export {entry.get('export_seconds')} s")

    summary: dict = {"device": args.device, "steps": steps(args.work)}
    env = read_json(args.work / "env.json")
    if env:
        summary["environment"] = env
    run = merged_bench(args.work)
    if run is not None:
        from fnnkit.bench import save_run, write_csv
        from fnnkit.cli.plots import write_plot

        stem = args.out / f"bench-{args.device}"
        save_run(run, stem.with_suffix(".json"))
        write_csv(run, stem.with_suffix(".csv"))
        try:
            write_plot(run, stem.with_suffix(".png"))
        except Exception as exc:  # the numbers matter more than the picture
            print(f"plot failed: {exc}")
        summary["bench_environment"] = run.header.environment
        summary["skipped"] = [s.model_dump() for s in run.skipped]
        summary["headline"] = headline(run, args.bandwidth_tbs)
        for variant, entry in summary["headline"]["per_variant"].items():
            for key, value in entry.items():
                if isinstance(value, dict):
                    print(f"{variant} {key}: best {value['best_backend']} p50 {value['best_p50_us']} us, "
                          f"eager {value['eager_p50_us']} us (x{value['speedup_vs_eager']})")  # fmt: skip
                for row in value if isinstance(value, list) else []:
                    print(f"{variant} {key}: {row['backend']:<18} {row['samples_per_s']:>14,} samples/s  "
                          f"{row['input_gb_per_s']:>8} GB/s of input = {row['share_of_bandwidth']:.1%} of "
                          f"{args.bandwidth_tbs} TB/s")  # fmt: skip
        for s in run.skipped:
            print(f"not measured: {s.variant} {s.backend} on {s.device}: {s.reason}")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"wrote {', '.join(sorted(p.name for p in args.out.iterdir()))} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
