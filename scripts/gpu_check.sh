#!/usr/bin/env bash
# The GPU check (docs/contributing.md): one run on a CUDA machine proves fnnkit's CUDA paths and measures them.
#
#   on a CUDA machine, after `make setup`:   PY=.venv/bin/python OUT=gpu-results bash scripts/gpu_check.sh
#   the same steps on the CPU, anywhere:     DEVICE=cpu PY=.venv/bin/python OUT=/tmp/gpuout bash scripts/gpu_check.sh
#   rerun only some steps (artifacts kept):  ONLY=bench-ort,pytest PY=.venv/bin/python bash scripts/gpu_check.sh
#
# Steps, in this order; each is time-boxed with `timeout`, recorded (ok / failed / timeout / skipped
# when BUDGET_S is used up) and never stops the next one. The report at the end always runs and
# writes into $OUT:
#   log.txt  train.json  exports.json  bench-<device>.json/.csv/.png  summary.json  pytest-<device>.xml
#
#   wheels          only if .whl/ holds an onnxruntime-gpu wheel for $PY (make gpu-wheels): into $SITE, first on PYTHONPATH
#   env, probe      nvidia-smi, versions; does ONNX Runtime's CUDA (and TensorRT) provider really start?
#   train-<device>  all five variants, bundled sample, data resident on the device; train-cpu: the same on the CPU
#   export-torch    the bench variants: .pt2 compiled for the device, TorchScript, parity on the device
#   export-onnx     the bench variants: ONNX, fp16 ONNX, parity with ONNX Runtime's CUDA provider
#   bench-*         fnnkit bench per backend group (a backend that crashes cannot take the others' rows with it)
#   pytest          the tests marked `cuda` (every backend x cuda, CUDA exports, CUDA graphs)
#   export-all-*    every variant for the device (parity on it); export-cpu: the CPU formats too
set -uo pipefail  # no -e: a failed step is recorded and the next one runs

cd "$(dirname "$0")/.." || exit 1
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpuout}
PY=${PY:-python3}
WORK=${WORK:-/tmp/fnnkit-gpu}               # trained models, exports, intermediate files; results go to $OUT
SITE=${SITE:-/tmp/site}                     # where a wheel from .whl/ is installed
BUDGET_S=${BUDGET_S:-3600}                  # no step starts after this many seconds; the report comes after
BENCH_VARIANTS=${BENCH_VARIANTS:-E}         # E: the deepest network, the most kernel launches per call
BATCHES=${BATCHES:-1,64,1024,8192,65536}
TRAIN_ITERS=${TRAIN_ITERS:-3000}            # the tutorial recipe
BANDWIDTH_TBS=${BANDWIDTH_TBS:-4.8}         # your GPU's memory bandwidth, TB/s (4.8: an H200's HBM3e, vendor datasheet)
ONLY=${ONLY:-}                              # comma list of step names; empty: every step
ART=$WORK/art
export PYTHONUNBUFFERED=1 FNNKIT_TRT_CACHE=$WORK/trt-cache COLUMNS=${COLUMNS:-200}  # wide tables in the log

# torch and ONNX formats are exported by separate commands: if ONNX Runtime's CUDA provider does not
# start, the ONNX parity check fails, and that must not cost the .pt2 and TorchScript files
TORCH_FORMATS=compiled,torchscript
if [[ $DEVICE == cuda ]]; then
  ONNX_FORMATS=onnx,onnx-fp16   # what the CUDA backends load
else
  ONNX_FORMATS=onnx,onnx-int8   # the dry run: what the CPU backends load
fi
START=$(date +%s)

step() {  # step NAME LIMIT_S COMMAND...: run it under `timeout`, within what is left of BUDGET_S
  local name=$1 cap=$2
  shift 2
  if [[ -n $ONLY && ",$ONLY," != *",$name,"* ]]; then
    return 0
  fi
  local left=$((BUDGET_S - ($(date +%s) - START)))
  local limit=$((cap < left ? cap : left))
  if ((limit < 15)); then
    printf '\n=== %s: SKIPPED, only %ss of the %ss budget left\n' "$name" "$left" "$BUDGET_S"
    printf '%s\tskipped\t-\t0\t%s\n' "$name" "$limit" >>"$WORK/steps.tsv"
    return 0
  fi
  printf '\n=== %s (limit %ss, %ss into the run): %s\n' "$name" "$limit" "$(($(date +%s) - START))" "$*"
  local t0 rc status seconds
  t0=$(date +%s.%N)
  timeout -k 10 "$limit" "$@"
  rc=$?
  seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  case $rc in
    0) status=ok ;;
    124 | 137) status=timeout ;;
    *) status=failed ;;
  esac
  printf '=== %s: %s (exit %s) in %ss\n' "$name" "$status" "$rc" "$seconds"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$seconds" "$limit" >>"$WORK/steps.tsv"
}

install_wheels() {  # an onnxruntime-gpu wheel from .whl/, installed for this Python only if it was built for it
  local tag rc wheels=() fit=()
  shopt -s nullglob
  wheels=(.whl/*.whl)
  shopt -u nullglob
  printf '\n=== wheels\n'
  if ((${#wheels[@]} == 0)); then
    echo "no wheels in .whl/: the installed ONNX Runtime is used"
    printf 'wheels\tok\t-\t0\t-\n' >>"$WORK/steps.tsv"
    return
  fi
  tag=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  for w in "${wheels[@]}"; do [[ $w == *"-$tag-"* ]] && fit+=("$w"); done
  ls -l "${wheels[@]}"
  if ((${#fit[@]} == 0)); then
    echo "the wheels in .whl/ are not built for $tag ($PY): not installed (a dry run on another Python)"
    printf 'wheels\tok\t-\t0\t-\n' >>"$WORK/steps.tsv"
    return
  fi
  timeout -k 10 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${fit[@]}"
  rc=$?
  printf 'wheels\t%s\t%s\t-\t120\n' "$([[ $rc == 0 ]] && echo ok || echo failed)" "$rc" >>"$WORK/steps.tsv"
  if ((rc == 0)); then
    export PYTHONPATH=$SITE:$PYTHONPATH  # before the image's site-packages: shadows its CPU-only onnxruntime
    echo "installed into $SITE: ${fit[*]}"
  fi
}

nvidia_lib_dirs() {  # CUDA 13 / cuDNN 9 libraries of the nvidia-* wheels beside torch, for ONNX Runtime's dlopen
  "$PY" - <<'EOF'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
found = {os.path.dirname(p) for r in roots for p in glob.glob(os.path.join(r, "nvidia", "**", "lib*.so*"), recursive=True)}
# never a driver stub: a libcuda.so found before the real driver would make every CUDA call fail
print(":".join(sorted(d for d in found if "stub" not in d and not glob.glob(os.path.join(d, "libcuda.so*")))))
EOF
}

fnnkit_export() {  # fnnkit_export STEP FORMATS VARIANTS DEVICE LIMIT_S
  step "$1" "$5" "$PY" -m fnnkit export --format "$2" --variant "$3" --dataset mnist-sample --device "$4" \
    --artifacts "$ART"
}

fnnkit_bench() {  # fnnkit_bench GROUP BACKENDS LIMIT_S
  step "bench-$1" "$3" "$PY" -m fnnkit bench --variant "$BENCH_VARIANTS" --backend "$2" --device "$DEVICE" \
    --dataset mnist-sample --batch-sizes "$BATCHES" --threads 1 --artifacts "$ART" --json "$WORK/bench/$1.json"
}

main() {
  echo "fnnkit GPU check: DEVICE=$DEVICE BUDGET_S=$BUDGET_S BENCH_VARIANTS=$BENCH_VARIANTS BATCHES=$BATCHES"
  echo "tree: $PWD ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git metadata')); OUT=$OUT WORK=$WORK PY=$PY"
  date -u '+started %Y-%m-%dT%H:%M:%SZ'
  if [[ -z $ONLY ]]; then
    rm -rf "$WORK"
  fi
  mkdir -p "$WORK/bench" "$OUT"
  : >"$WORK/steps.tsv"
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

  if [[ -z $ONLY || ",$ONLY," == *",wheels,"* || ! -d $SITE ]]; then
    install_wheels
  else
    export PYTHONPATH=$SITE:$PYTHONPATH
  fi
  local libs
  libs=$(nvidia_lib_dirs)
  export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "PYTHONPATH=$PYTHONPATH"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

  step env 30 bash -c 'nvidia-smi && nvidia-smi --format=csv \
    --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,pcie.link.gen.max'

  step probe 90 "$PY" scripts/gpu_probe.py --device "$DEVICE" --json "$WORK/env.json"

  step "train-$DEVICE" 180 "$PY" -m fnnkit train --variant all --dataset mnist-sample --device "$DEVICE" \
    --iters "$TRAIN_ITERS" --artifacts "$ART"
  if [[ $DEVICE != cpu ]]; then
    step train-cpu 180 "$PY" -m fnnkit train --variant all --dataset mnist-sample --device cpu \
      --iters "$TRAIN_ITERS" --artifacts "$WORK/art-cpu"
  fi
  fnnkit_export export-torch "$TORCH_FORMATS" "$BENCH_VARIANTS" "$DEVICE" 180
  fnnkit_export export-onnx "$ONNX_FORMATS" "$BENCH_VARIANTS" "$DEVICE" 120

  fnnkit_bench torch eager,compile,torchscript,aoti,eager-fp16,eager-bf16 240
  fnnkit_bench cudagraphs compile-cudagraphs 150
  fnnkit_bench ort onnxruntime,onnxruntime-fp16,onnxruntime-trt,onnxruntime-int8 150

  step pytest 240 "$PY" -m pytest tests -q -m cuda -p no:cacheprovider --junitxml="$OUT/pytest-$DEVICE.xml"
  fnnkit_export export-all-torch "$TORCH_FORMATS" all "$DEVICE" 240
  fnnkit_export export-all-onnx "$ONNX_FORMATS" all "$DEVICE" 120
  if [[ $DEVICE != cpu ]]; then
    fnnkit_export export-cpu all all cpu 180
  fi

  printf '\n=== report (always runs; %ss into the run)\n' "$(($(date +%s) - START))"
  timeout -k 10 120 "$PY" scripts/gpu_report.py --work "$WORK" --out "$OUT" --device "$DEVICE" \
    --bandwidth-tbs "$BANDWIDTH_TBS" || echo "=== report: failed (exit $?)"

  printf '\n=== steps (%ss in all)\n' "$(($(date +%s) - START))"
  column -t -s $'\t' "$WORK/steps.tsv" 2>/dev/null || cat "$WORK/steps.tsv"
  ls -l "$OUT"
  ! grep -qvP '\t(ok)\t' "$WORK/steps.tsv"  # exit 1 when any step did not pass
}

mkdir -p "$OUT"
main 2>&1 | tee "$OUT/log.txt"
