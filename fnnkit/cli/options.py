"""Options shared by several commands, written once."""

from __future__ import annotations

import math
from typing import Any

import typer

from fnnkit.env import resolve_device, resolve_device_name
from fnnkit.errors import ConfigError
from fnnkit.paths import user_path
from fnnkit.registry import DEVICES
from fnnkit.store import check_output_path


def folder_option(default: str | None, flag: str, help: str, envvar: str | None = None) -> Any:
    """A folder option, made absolute here (``fnnkit.paths.user_path``): commands, their children and
    Ray replicas never see a relative path, whatever folder they run in. Refused at once if it names
    something that is not a folder."""
    return typer.Option(
        default, flag, envvar=envvar, help=help, parser=str, metavar="<path>", show_default=default is not None,
        callback=lambda value: None if value is None else user_path(value, flag, folder=True),
    )  # fmt: skip


def input_path(flag: str, help: str) -> Any:
    """An input file option (a baseline to compare with), made absolute here; the reader checks the file."""
    return typer.Option(
        None, flag, help=help, parser=str, metavar="<path>",
        callback=lambda value: None if value is None else user_path(value, flag),
    )  # fmt: skip


def input_paths(value: list[str] | str | None, what: str) -> Any:
    """Path arguments (``predict FILES``, ``verify PATH``), made absolute here; a callback for typer.Argument."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [user_path(v, what) for v in value]
    return user_path(value, what)


ARTIFACTS = folder_option("artifacts", "--artifacts", "Root folder of trained and exported models.", "FNNKIT_ARTIFACTS")
DATA_DIR = folder_option(
    None, "--data-dir", "Folder for MNIST / Fashion-MNIST files \\[default: ~/.cache/fnnkit/data].", "FNNKIT_DATA"
)


def device_option(default: str, why: str, as_name: bool = False) -> Any:
    """``--device``, one vocabulary for every command: auto | cpu | cuda, made a ``torch.device`` once, here.

    ``why`` says why this command's default is what it is (export: cpu, so files run anywhere). Commands
    annotate the parameter ``Any``: typer reads the signature at import, and ``fnnkit --help`` must not
    import torch just to name the type the callback returns. ``as_name``: the device as ``"cpu"`` / ``"cuda"``,
    for commands whose ONNX Runtime / OpenVINO paths import no torch (``--device cpu`` then never does)."""
    return typer.Option(
        default,
        "--device",
        help=f"auto | cpu | cuda ('auto' takes the GPU when there is one) \\[default: {default}: {why}].",
        show_default=False,
        metavar="DEVICE",
        parser=str,
        callback=lambda value: (resolve_device_name if as_name else resolve_device)(value.strip()),
    )


def resolve_devices(name: str) -> tuple[str, ...]:
    """Several devices, for bench: ``all`` -> every device (unavailable ones become skipped rows with the
    reason); otherwise one device through ``resolve_device`` (``cuda`` without a GPU: one clear line)."""
    if name.strip().lower() == "all":
        return DEVICES
    return (resolve_device(name.strip()).type,)


DEVICE = device_option("auto", "the fastest device here, so nothing has to be said on a GPU machine")
DEVICES_OPTION = typer.Option(
    "all",
    "--device",
    help="cpu | cuda | auto | all \\[default: all: every device, so one run compares them; "
    "CUDA rows are skipped, with the reason, without a GPU].",
    show_default=False,
    metavar="DEVICES",
    parser=str,
    callback=lambda value: resolve_devices(value),
)
VARIANT = typer.Option("all", "--variant", "-v", help="A, B, C, D, E, a comma list, or all.")
DATASET = typer.Option(
    "auto",
    "--dataset",
    "-d",
    help="auto | mnist | fashion-mnist | mnist-sample ('auto': MNIST if reachable, else the sample).",
)
TRAINED_DATASET = typer.Option(
    "auto",
    "--dataset",
    "-d",
    help="Which trained models to use: mnist | fashion-mnist | mnist-sample | auto (best present).",
)


SEED_MAX = 2**63 - 1  # torch.manual_seed's range


def number(
    default: Any,
    flag: str,
    help: str,
    low: float,
    high: float,
    *,
    above: bool = False,
    kind: type | None = None,
    short: str | None = None,
) -> Any:
    """A numeric option checked at the boundary: finite, ``low <= value <= high`` (``low < value`` with
    ``above``), else one ConfigError line naming the flag and the range, before any work starts.

    ``kind`` (int or float) is the default's type unless given; ``short`` is a one-letter alias.
    The text is parsed here, never by typer, so ``--top nan`` or ``--port 1.5`` get the same one
    line as ``--top 0``, not a usage box.
    """
    kind = kind or type(default)
    if kind not in (int, float):  # a programming error, caught when the module is imported
        raise TypeError(f"number({flag!r}): give kind=int or kind=float when the default is {default!r}")
    if kind is int:
        expected = f"{'a positive integer' if low == 1 else 'an integer'} from {shown(low)} to {shown(high)}"
    elif above and low == 0:
        expected = f"a positive number (finite, <= {shown(high)})"
    else:
        expected = f"a finite number {'>' if above else '>='} {shown(low)} and <= {shown(high)}"

    def parse(value: Any) -> Any:  # never raises: typer would turn the error into a usage box
        try:
            return kind(value.strip()) if isinstance(value, str) else value
        except (ValueError, OverflowError):
            return value

    def check(value: Any) -> Any:
        if value is None:
            return value
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not (ok and (value > low if above else value >= low) and value <= high):
            raise ConfigError(f"{flag} must be {expected}, got {value}")
        return kind(value)

    names = (flag, short) if short else (flag,)
    return typer.Option(default, *names, help=help, parser=parse, callback=check)


_FLAGS: dict[tuple[str, str], str] = {}  # (model, field) -> the flag that sets it: named by ``build``


def field_number(model: Any, name: str, flag: str, help: str, *, default: Any = ..., short: str | None = None) -> Any:
    """A numeric option whose default, type and bounds are the model field's own (``Field(ge=..., le=...)``):
    every bound is stated once, on the model, and checked here by ``number()`` before any work starts."""
    info = model.model_fields[name]
    bounds = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in info.metadata}  # Gt(gt=0) -> "Gt": 0
    kinds = [getattr(a, "__origin__", a) for a in getattr(info.annotation, "__args__", (info.annotation,))]
    kinds = [k for k in kinds if k in (int, float)]  # Int | None -> int
    low, above = (bounds["Gt"], True) if "Gt" in bounds else (bounds.get("Ge", -math.inf), False)
    if "Le" not in bounds or low == -math.inf:  # a programming error, caught when the module is imported
        raise TypeError(f"field_number({model.__name__}.{name}): the field needs a lower and an upper bound")
    _FLAGS[model.__name__, name] = flag
    value = info.get_default(call_default_factory=True) if default is ... else default
    return number(value, flag, help, low, bounds["Le"], above=above, kind=kinds[0], short=short)


def build(model: Any, **values: Any) -> Any:
    """``model(**values)``; a ValidationError becomes the one ConfigError line naming the flag that set the field."""
    from pydantic import ValidationError

    from fnnkit.errors import FnnkitError

    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        inner = error.get("ctx", {}).get("error")
        if isinstance(inner, FnnkitError):  # fnnkit's own line (unknown backend, ...): already names what to do
            raise inner from None
        field = str(error["loc"][0]) if error["loc"] else ""
        flag = _FLAGS.get((model.__name__, field), "--" + field.replace("_", "-")) if field else ""
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{flag + ': ' if flag else ''}{message}") from None


def shown(value: float) -> str:
    """A limit as a person reads it: integers in full (1048576, 9223372036854775807), other numbers short."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def output_path(flag: str, help: str) -> Any:
    """An output file option, made absolute (``user_path``) and refused at once (one line naming ``flag``) if
    it exists and is not a regular file, or its folder is missing or read-only; so nothing is measured or
    trained for a file that cannot be written. ``store.atomic_write`` refuses the same targets at write time."""
    return typer.Option(
        None,
        flag,
        help=help,
        parser=str,
        metavar="<path>",
        callback=lambda value: None if value is None else check_output_path(user_path(value, flag), flag),
    )
