"""Shrink an onnxruntime-gpu wheel to what fnnkit's models need on one GPU architecture.

    python3 scripts/slim_ort_wheel.py .whl-full/onnxruntime_gpu-1.31.1-cp312-*.whl .whl --keep-sm 90

Why: the PyPI wheel is 256 MB, to be copied to a machine without a package index.
Almost all of it is ``libonnxruntime_providers_cuda.so``, whose ``.nv_fatbin`` section holds
every CUDA kernel compiled for six architectures (sm_75, 80, 86, 89, 90a, 120a), as
zstd-compressed cubins. Two cuts bring it to about 40 MiB:

1. architectures: only entries for ``--keep-sm`` stay (sm_90a cubins run on H100/H200);
2. contrib-only kernels: a cubin none of whose kernels is in the core CUDA execution
   provider (C++ namespace ``onnxruntime::cuda``) and which belongs to the contrib/LLM
   operators (``onnxruntime::contrib``, CUTLASS, flash attention, MoE, DeepGEMM) is dropped
   (``--keep-contrib`` keeps them). fnnkit's graphs use core ONNX ops only (Gemm/MatMul, Add,
   Sigmoid, Tanh, Relu, Cast), which run on cuBLAS and core kernels.

Each fatbin container is rewritten in place with only its kept entries and its header's size
updated; the bytes freed at its end become zeros (which compress to nothing in the wheel).
ELF layout, offsets and every kept cubin are byte-identical, and a container left without
entries looks to the CUDA driver like the nine sm_120-only containers the original already
has: a module with no image for this GPU, an error only if one of its kernels is launched
("no kernel image is available"), never a wrong result. The wheel gets a build tag
(``1sm90core``) saying what it is, and RECORD is rewritten with the new hashes. Needs the
``zstd`` command to read the compressed cubins' kernel names.

Fatbin layout (as cuobjdump reads it): containers, each a 16-byte header (u32 magic
0xBA55ED50, u16 version, u16 header size, u64 body size) then entries, each a header (u16
kind 1=PTX/2=ELF, u16, u32 header size, u64 payload size, ..., u32 arch at byte 28) and its
payload.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
TARGET = "onnxruntime/capi/libonnxruntime_providers_cuda.so"


def elf_sections(data: bytes | bytearray) -> dict[str, tuple[int, int]]:
    """Section name -> (file offset, size) of a little-endian ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = []
    for i in range(shnum):
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        headers.append((name, offset, size))
    strings = headers[shstrndx][1]
    out = {}
    for name, offset, size in headers:
        end = data.index(b"\0", strings + name)
        out[bytes(data[strings + name : end]).decode()] = (offset, size)
    return out


CONTRIB = re.compile(rb"contrib|cutlass|flash|moe|deep_gemm|llm")
CORE = b"N11onnxruntime4cuda"  # mangled prefix of namespace onnxruntime::cuda


def kernel_names(payload: bytes | bytearray, flags: int, compressed: int) -> set[bytes]:
    """Mangled symbol names in one cubin (zstd-decompressed first when the entry says so)."""
    if flags & 0x8000:  # zstd-compressed payload (CUDA 12.8+ fatbins), padded to 8 bytes after the frame
        payload = bytes(payload[:compressed])
        try:
            payload = subprocess.run(["zstd", "-dcq"], input=payload, capture_output=True, check=True).stdout
        except FileNotFoundError:
            raise SystemExit("the zstd command is needed to read compressed cubins: apt-get install zstd") from None
    return set(re.findall(rb"_Z[A-Za-z0-9_]{4,}", payload))


def contrib_only(names: set[bytes]) -> bool:
    return not any(CORE in n for n in names) and any(CONTRIB.search(n) for n in names)


def prune_fatbin(data: bytearray, keep: set[int], keep_contrib: bool = False) -> collections.Counter:
    """Rewrite every fatbin container in place with only the entries to keep; bytes per (kept?, why, arch)."""
    offset, size = elf_sections(data)[".nv_fatbin"]
    pos, end = offset, offset + size
    tally: collections.Counter = collections.Counter()
    while pos + 16 <= end:
        magic, _version, header, body = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:  # containers are 8-byte aligned; skip padding
            pos += 8
            continue
        entry, stop = pos + header, pos + header + body
        kept = bytearray()
        while entry < stop:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            (arch,) = struct.unpack_from("<I", data, entry + 28)
            (compressed,) = struct.unpack_from("<I", data, entry + 16)
            (flags,) = struct.unpack_from("<Q", data, entry + 40)
            start = entry + entry_header
            if kind not in (1, 2) or start + payload > stop:
                raise ValueError(f"unexpected fatbin entry at {entry:#x}: kind {kind}, size {payload}")
            if arch not in keep:
                why = "other architecture"
            elif not keep_contrib and contrib_only(kernel_names(data[start : start + payload], flags, compressed)):
                why = "contrib/LLM kernels only"
            else:
                why = ""
                kept += data[entry : start + payload]
            tally[(not why, why, kind, arch)] += payload
            entry = start + payload
        struct.pack_into("<Q", data, pos + 8, len(kept))
        data[pos + header : stop] = bytes(kept) + bytes(body - len(kept))
        pos = stop
    if not any(k[0] for k in tally):
        raise ValueError(f"no fatbin entry for sm_{sorted(keep)} in this library; nothing would run")
    return tally


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def slim(wheel: Path, out_dir: Path, keep: set[int], keep_contrib: bool = False) -> Path:
    tag = "1sm" + "_".join(str(k) for k in sorted(keep)) + ("" if keep_contrib else "core")
    match = re.fullmatch(r"(?P<name>[^-]+)-(?P<version>[^-]+)-(?P<rest>cp\d+-[^-]+-.+\.whl)", wheel.name)
    if not match:
        raise ValueError(f"{wheel.name}: expected NAME-VERSION-PYTAG-ABITAG-PLATFORM.whl (no build tag yet)")
    target = out_dir / f"{match['name']}-{match['version']}-{tag}-{match['rest']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[str] = []
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        record_name = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        for info in src.infolist():
            if info.filename == record_name:
                continue
            data = src.read(info)
            if info.filename == TARGET:
                buffer = bytearray(data)
                tally = prune_fatbin(buffer, keep, keep_contrib)
                data = bytes(buffer)
                for (kept, why, kind, arch), size in sorted(tally.items(), key=lambda kv: (kv[0][3], kv[0][1])):
                    what = "kept" if kept else f"dropped ({why})"
                    print(f"  {'PTX' if kind == 1 else 'ELF'} sm_{arch}: {size / 2**20:6.1f} MiB {what}")
            if info.filename.endswith(".dist-info/WHEEL"):
                text = data.decode()
                text = re.sub(r"(?m)^Build: .*\n", "", text) + f"Build: {tag}\n"
                data = text.encode()
            records.append(record_line(info.filename, data))
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            dst.writestr(copy, data, zipfile.ZIP_DEFLATED, 9)
        records.append(f"{record_name},,")
        dst.writestr(record_name, "\n".join(records) + "\n", zipfile.ZIP_DEFLATED, 9)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="the onnxruntime-gpu wheel from PyPI")
    parser.add_argument("out_dir", type=Path, help="folder for the slim wheel")
    parser.add_argument("--keep-sm", default="90", help="comma list of SM versions to keep (default 90: H100/H200)")
    parser.add_argument("--keep-contrib", action="store_true", help="keep contrib/LLM-only kernels too (~70 MiB more)")
    args = parser.parse_args(argv)
    keep = {int(k) for k in args.keep_sm.split(",")}
    print(f"slimming {args.wheel.name} to sm_{','.join(map(str, sorted(keep)))}:")
    target = slim(args.wheel, args.out_dir, keep, args.keep_contrib)
    print(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MiB; was {args.wheel.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
