#!/usr/bin/env bash
# The first thing to run on a GPU: `bench gpu` on CUDA in one call, on a bare machine.
#
# The machine gets a copy of the working tree (plus .whl/, filled here by scripts/gpu_wheels.sh and
# carried along). This script checks that its Python has torch, installs from .whl/ only the
# packages that Python lacks or has older than the carried wheel (into a temporary folder, no
# network), then runs
#   python -m workbench bench gpu --device DEVICE --minutes MINUTES --preset PRESET [more bench options]
# writing gpu.json (the table and RESULT figures), gpu.log (everything printed) and, on CUDA,
# nvidia-smi.txt into $OUT when it is set (else runs/bench/).
#
# usage: scripts/gpu_check.sh [--dry-run] [--device cuda] [--minutes 4] [--preset paper] [-- bench options]
#   --dry-run   say what would be installed and run, install and run nothing
# environment: PYTHON (default python3), OUT, GPU_CHECK_IMPORTS ("module:wheel-name ..." to check instead of
#   the default list), GPU_CHECK_SITE (install folder, default /tmp/workbench-site), GPU_CHECK_WHEELS (the wheels'
#   folder, default .whl)
# exit codes: 0 ran with failed=0; 1 the bench ran and some row failed; 2 bad usage or a missing wheel;
#   3 no usable torch; other: the bench's own
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY=0 DEVICE=cuda MINUTES=4 PRESET=paper
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY=1; shift ;;
        --device) DEVICE="$2"; shift 2 ;;
        --minutes) MINUTES="$2"; shift 2 ;;
        --preset) PRESET="$2"; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "error: unknown option $1 (see the usage at the top of scripts/gpu_check.sh)" >&2; exit 2 ;;
    esac
done
PY=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/workbench-site}
WHEEL_DIR=${GPU_CHECK_WHEELS:-$ROOT/.whl}
# module imported by `bench gpu` : the wheel (distribution) that provides it
IMPORTS=${GPU_CHECK_IMPORTS:-"timm:timm tabulate:tabulate tqdm:tqdm safetensors:safetensors pandas:pandas \
numpy:numpy PIL:pillow cv2:opencv-python-headless skimage:scikit-image scipy:scipy torchvision:torchvision"}

# 1. torch
if ! TORCH=$("$PY" -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "no-cuda", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1); then
    echo "error: $PY cannot import torch, which this check expects on the GPU machine (it is too large to carry):" >&2
    echo "$TORCH" | tail -n 3 >&2
    exit 3
fi
echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'); torch: $TORCH"
if [[ "$DEVICE" == cuda* && "$TORCH" != *" cuda "* ]]; then
    echo "error: torch $TORCH sees no CUDA GPU; run with --device cpu to check the rest" >&2
    exit 3
fi

# 2. the missing packages, from the carried wheels
# one Python process decides, per module: fine as it is, or the carried wheel to install (the module is
# missing, or older than the wheel we carry: we run with what we test with); prints "missing DIST" lines
# for what has no wheel
PLAN=$("$PY" - "$WHEEL_DIR" $IMPORTS <<'PYTHON' 2>/dev/null
import importlib
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

def key(version):
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])

folder = Path(sys.argv[1])
for pair in sys.argv[2:]:
    module, dist = pair.split(":", 1)
    wheels = sorted(folder.glob(dist.replace("-", "_") + "-*.whl")) or sorted(folder.glob(dist + "-*.whl"))
    carried = wheels[0].name.split("-")[1] if wheels else None
    try:
        importlib.import_module(module)
    except Exception:
        have = None
    else:
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:  # importable under another distribution name: keep it
            continue
    if have is not None and (carried is None or key(have) >= key(carried)):
        continue
    print(f"wheel {wheels[0]} {dist} {have or 'absent'} {carried}" if wheels else f"missing {dist} {module}")
PYTHON
)
MISSING=() WHEELS=()
while read -r kind first second third fourth; do
    case "$kind" in
        missing)
            echo "error: $PY lacks $first (import $second) and $WHEEL_DIR has no wheel of it; run" \
                 "scripts/gpu_wheels.sh here (add $first to its list if needed) and carry .whl" >&2
            exit 2 ;;
        wheel) WHEELS+=("$first"); MISSING+=("$second ($third -> $fourth)") ;;
    esac
done <<< "$PLAN"
echo "missing here: ${MISSING[*]:-none}"
if [[ ${#WHEELS[@]} -gt 0 ]]; then
    echo "install: ${WHEELS[*]##*/} -> $SITE"
    if [[ $DRY -eq 0 ]]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
            "${WHEELS[@]}" || { echo "error: installing the carried wheels failed" >&2; exit 2; }
    fi
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

# 3. the bench
OUT_DIR=${OUT:-runs/bench}
COMMAND=("$PY" -m workbench bench gpu --device "$DEVICE" --minutes "$MINUTES" --preset "$PRESET" --out "$OUT_DIR" "${EXTRA[@]}")
echo "run: ${COMMAND[*]}"
if [[ $DRY -eq 1 ]]; then
    exit 0
fi
mkdir -p "$OUT_DIR"
if [[ "$DEVICE" == cuda* ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi > "$OUT_DIR/nvidia-smi.txt" 2>&1
fi
"${COMMAND[@]}" 2>&1 | tee "$OUT_DIR/gpu.log"
STATUS=${PIPESTATUS[0]}
if [[ $STATUS -eq 0 ]] && ! tail -n 1 "$OUT_DIR/gpu.log" | grep -q ' failed=0 '; then
    STATUS=1
fi
exit "$STATUS"
