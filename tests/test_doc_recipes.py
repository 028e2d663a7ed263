"""Every Python and C++ recipe in docs/*.md runs, as a reader would paste it.

Recipes are read from the docs themselves (```python and ```cpp blocks), so one that drifts from
the code fails here. They run in a folder holding ``artifacts/mnist/<variant>`` with real trained
and exported models (the sample-trained ones, under the README's path), without fnnkit's test
helpers. The C++ recipes are compiled against the torch wheel's libtorch headers and libraries
with g++ (skipped, with the reason, where g++ or the headers are missing), and run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from artifactkit import DATASET, PT2_VARIANT

from fnnkit.export import export_variant, get_format

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(?P<lang>\w+)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
COMPILE_TIMEOUT_S = 300  # libtorch's headers are large: ~1 min on 2 cores
NEEDS = {"A", "C", "E"}  # the variants the recipes name


def recipes(lang: str) -> list[tuple[str, str]]:
    """(doc name, block) for every ```lang block in docs/*.md, in order."""
    return [(doc.name, m["body"]) for doc in DOCS for m in FENCE.finditer(doc.read_text()) if m["lang"] == lang]


def test_the_docs_have_recipes():
    """The parser finds the recipes: a rewrite that hides them from it fails here, not silently."""
    python, cpp = recipes("python"), recipes("cpp")
    assert len(python) >= 6 and {d for d, _ in python} >= {"guide.md", "design.md"}
    loaders = ("AOTIModelPackageLoader", "jit::load")
    assert all(any(loader in block for _, block in cpp) for loader in loaders), cpp


@pytest.fixture(scope="module")
def workdir(exported_root, tmp_path_factory) -> Path:
    """A folder with ``artifacts/mnist/{A,C,E}``: every CPU export, C's ``.pt2`` and ``.ptl`` too, and
    C's ``model.pt2`` / ``model.torchscript.pt`` beside it (the C++ recipes open them by file name)."""
    work = tmp_path_factory.mktemp("recipes")
    for variant in NEEDS:
        shutil.copytree(exported_root / DATASET / variant, work / "artifacts" / "mnist" / variant)
    export_variant(work / "artifacts" / "mnist" / PT2_VARIANT, [get_format("torchscript-lite")], device="cpu")
    for name in ("model.pt2", "model.torchscript.pt"):
        shutil.copy(work / "artifacts" / "mnist" / PT2_VARIANT / name, work / name)
    return work


_RUNNER = """
import json, sys, traceback
results = []
for doc, code in json.load(open(sys.argv[1])):
    try:
        exec(compile(code, doc, "exec"), {"__name__": "__recipe__"})
        results.append([doc, None])
    except BaseException:
        results.append([doc, traceback.format_exc()[-3000:]])
print("RESULTS " + json.dumps(results))
"""


@pytest.mark.slow  # one fresh Python running every recipe (torch import, a short bench in a worker): ~10 s
def test_every_python_recipe_runs(workdir):
    blocks = recipes("python")
    listing = workdir / "recipes.json"
    listing.write_text(json.dumps(blocks))
    env = {k: v for k, v in os.environ.items() if k not in ("FNNKIT_ARTIFACTS", "FNNKIT_DATA")}
    child = subprocess.run([sys.executable, "-c", _RUNNER, str(listing)], cwd=workdir, env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    line = [x for x in child.stdout.splitlines() if x.startswith("RESULTS ")]
    assert line, child.stdout[-3000:] + child.stderr[-3000:]
    failed = [f"{doc}:\n{error}" for doc, error in json.loads(line[-1][len("RESULTS ") :]) if error]
    assert not failed, "\n\n".join(failed)


# --------------------------------------------------------------------------- C++


def _torch_dirs() -> tuple[Path, Path]:
    import torch

    base = Path(torch.__file__).parent
    return base / "include", base / "lib"


def _gxx() -> str:
    gxx = shutil.which("g++")
    include, _ = _torch_dirs()
    if gxx is None:
        pytest.skip("g++ is not installed: apt-get install g++ (the C++ recipes need a C++20 compiler)")
    if not (include / "torch" / "script.h").is_file():
        pytest.skip(f"this torch has no libtorch headers under {include}")
    return gxx


def _program() -> str:
    """Each ```cpp recipe as a function (it defines ``logits``), and a main that runs them all and prints shapes."""
    functions, calls = [], []
    for i, (_, block) in enumerate(recipes("cpp")):
        functions.append(f"static void recipe_{i}() {{\n{block}\nreport({i}, logits);\n}}")
        calls.append(f"  recipe_{i}();")
    return "\n".join([
        "#include <torch/script.h>",
        "#include <torch/csrc/inductor/aoti_package/model_package_loader.h>",
        "#include <iostream>",
        "static void report(int i, const at::Tensor& t) {",
        '  std::cout << "recipe " << i << " " << t.sizes() << std::endl;',
        "}",
        "static void report(int i, const std::vector<at::Tensor>& t) { report(i, t.at(0)); }",
        *functions,
        "int main() {", *calls, "  return 0;", "}",
    ])  # fmt: skip


def _flags(std: str) -> list[str]:
    import torch

    include, lib = _torch_dirs()
    abi = int(torch.compiled_with_cxx11_abi())
    return [f"-std={std}", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", f"-I{include}", f"-I{include}/torch/csrc/api/include"]


def test_cpp_recipes_need_cxx20(workdir):
    """Under C++17 libtorch's headers stop at their #error (preprocessing only: a second, not a minute)."""
    gxx = _gxx()
    (workdir / "main17.cpp").write_text(_program())
    child = subprocess.run([gxx, *_flags("c++17"), "-E", "-o", os.devnull, "main17.cpp"], cwd=workdir,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert child.returncode != 0 and "C++20 or later compatible compiler is required" in child.stderr, child.stderr


@pytest.mark.slow  # compiling against libtorch's headers: about a minute on 2 cores
def test_cpp_recipes_build_and_run(workdir):
    gxx = _gxx()
    _, lib = _torch_dirs()
    (workdir / "main.cpp").write_text(_program())
    link = [f"-L{lib}", "-ltorch", "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{lib}"]
    built = subprocess.run([gxx, *_flags("c++20"), "-O1", "main.cpp", *link, "-o", "main"], cwd=workdir,
                           capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    ran = subprocess.run(["./main"], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    shapes = re.findall(r"^recipe (\d+) \[4, 10\]$", ran.stdout, re.MULTILINE)
    assert len(shapes) == len(recipes("cpp")), ran.stdout
