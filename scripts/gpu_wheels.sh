#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with the wheels scripts/gpu_check.sh may need on a bare GPU machine.
#
# The GPU machine has its own Python (3.12, x86-64) with PyTorch and most scientific packages, but
# no network. This downloads, here, the small dependencies of `bench gpu` for that Python, without
# their own dependencies (--no-deps); gpu_check.sh installs only those the machine lacks. torch,
# torchvision, numpy, pandas, scipy, scikit-image and opencv are large and expected there: they are
# not carried (the working tree that travels is limited to 64 MiB).
#
# usage: scripts/gpu_wheels.sh [--python-version 3.12]
set -euo pipefail
cd "$(dirname "$0")/.."

PYVER=3.12
if [[ "${1:-}" == "--python-version" ]]; then PYVER="$2"; fi
PIP=${PIP:-python3 -m pip}
WHEELS=(timm tabulate tqdm safetensors)  # pure Python or small; keep in step with IMPORTS in gpu_check.sh

mkdir -p .whl
$PIP download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "${WHEELS[@]}"
# one version of each: an older download left beside a newer one would stop the install there
for name in "${WHEELS[@]}"; do
    ls -t .whl/"${name}"-*.whl 2>/dev/null | tail -n +2 | xargs -r rm -f
done
du -sh .whl
ls .whl
