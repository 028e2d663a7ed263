"""Write docs/reference.md's generated tables from fnnkit's own registries, so the docs cannot drift.

Each table sits between ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``; only
what lies between the markers is rewritten. ``--check`` writes nothing and exits 1 naming every
block that differs (tests/test_reference_doc.py runs the same comparison).

Run from the repository root: ``.venv/bin/python scripts/gen_reference.py [--check]``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"
BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)", re.DOTALL
)


def _cell(text: object) -> str:
    """One table cell: pipes escaped, whitespace on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def backends_table() -> str:
    """Every backend of ``fnnkit.backends.BACKENDS``, in registry order."""
    from fnnkit.backends import BACKENDS
    from fnnkit.formats import FORMATS

    def file(backend) -> str:
        if backend.export_format is None:
            return "`model.safetensors` (the trained weights)"
        fmt = FORMATS[backend.export_format]
        names = dict.fromkeys(fmt.filename(device) for device in backend.devices)
        return " / ".join(f"`{name}`" for name in names)

    rows = [
        (
            f"`{b.name}`", file(b), b.precision, ", ".join(b.devices), b.tolerance.describe(),
            "yes" if b.batch_invariant else "**no** (`fnnkit serve` refuses it)", b.summary,
        )
        for b in BACKENDS.values()
    ]  # fmt: skip
    header = ("backend", "runs", "precision", "devices", "agrees with eager when", "batch-invariant", "what")
    return _table(header, rows)


def formats_table() -> str:
    """Every export format of ``fnnkit.formats.FORMATS``, in registry order, with the backend that proves it."""
    from fnnkit.backends import BACKENDS
    from fnnkit.formats import FORMATS

    rows = [
        (
            f"`{f.name}`", " / ".join(f"`{f.filename(d)}`" for d in (("cpu", "cuda") if f.device_bound else ("cpu",))),
            f.runtime, ", ".join(f.in_all) or "never (ask for it by name)", "yes" if f.uses_opset else "-",
            f"`{f.backend}`", BACKENDS[f.backend].tolerance.describe(),
        )
        for f in FORMATS.values()
    ]  # fmt: skip
    header = ("`--format`", "file (cpu / cuda)", "runs without fnnkit on", "in `--format all` for", "`--opset`",
              "proved by (export parity)", "parity: passes when")  # fmt: skip
    return _table(header, rows)


def cli_options() -> str:
    """Every command's arguments and options, as ``fnnkit COMMAND --help`` lists them."""
    import typer  # typer ships its own click: commands and parameters are told apart by duck type

    from fnnkit.cli import app

    def commands(group, prefix: str) -> list[tuple[str, object]]:
        found = []
        for name, command in group.commands.items():
            if getattr(command, "hidden", False):
                continue
            path = f"{prefix} {name}"
            found += commands(command, path) if hasattr(command, "commands") else [(path, command)]
        return found

    root = typer.main.get_command(app)
    parts = []
    for path, command in commands(root, "fnnkit"):
        rows = []
        for param in command.params:
            if getattr(param, "hidden", False) or param.name == "help":
                continue
            if param.param_type_name == "argument":
                name = f"`{param.name.upper()}`" + ("" if param.required else " (optional)")
            else:
                name = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
            default = param.default
            shown = "" if default in (None, "") or param.required or callable(default) else f"`{_default(default)}`"
            rows.append((name, shown, getattr(param, "help", None) or ""))
        table = _table(("option", "default", "meaning"), rows) if rows else "No options.\n"
        parts.append(f"### `{path}`\n\n{_first_line(command.help)}\n\n{table}")
    return "\n".join(parts)


def _default(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _first_line(text: str | None) -> str:
    """A command's help up to its first blank line (the rest is examples, shown by --help)."""
    return " ".join((text or "").strip().split("\n\n")[0].split())


GENERATORS: dict[str, Callable[[], str]] = {
    "backends": backends_table,
    "formats": formats_table,
    "cli": cli_options,
}


def render(text: str) -> str:
    """``text`` with every marked block rewritten; a block name without a generator is an error."""
    names = [m["name"] for m in BLOCK.finditer(text)]
    unknown = sorted(set(names) - set(GENERATORS))
    missing = sorted(set(GENERATORS) - set(names))
    if unknown or missing:
        raise ValueError(f"generated blocks: unknown {unknown}, missing {missing} (known: {', '.join(GENERATORS)})")
    return BLOCK.sub(lambda m: m.group(1) + "\n" + GENERATORS[m["name"]]() + "\n" + m.group(4), text)


def stale_blocks(text: str) -> list[str]:
    """Names of the blocks whose committed text differs from what the registries generate."""
    fresh = {m["name"]: m["body"] for m in BLOCK.finditer(render(text))}
    return [m["name"] for m in BLOCK.finditer(text) if m["body"] != fresh[m["name"]]]


def main(argv: list[str]) -> int:
    text = REFERENCE.read_text(encoding="utf-8")
    if argv == ["--check"]:
        stale = stale_blocks(text)
        for name in stale:
            print(f"{REFERENCE}: generated block {name!r} differs from the registries; run scripts/gen_reference.py")
        return 1 if stale else 0
    if argv:
        print("usage: gen_reference.py [--check]", file=sys.stderr)
        return 2
    new = render(text)
    if new != text:  # atomic: a reader never sees half a page
        fd, tmp = tempfile.mkstemp(dir=REFERENCE.parent, prefix=".reference.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(new)
        os.replace(tmp, REFERENCE)
    print(f"{REFERENCE}: {', '.join(GENERATORS)} {'rewritten' if new != text else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
