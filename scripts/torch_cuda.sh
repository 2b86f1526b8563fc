#!/usr/bin/env bash
# Prints the pip arguments of the CUDA build of torch that this machine's NVIDIA driver can run, and says on
# stderr which build it chose and why. Usage: torch_cuda.sh VERSION   (e.g. 2.13.0)
#
# The driver's CUDA version is the one `nvidia-smi` prints in its header ("CUDA Version: 12.4"): the newest
# CUDA runtime it supports. A torch build for CUDA X.Y needs a driver that supports at least X.Y, so the
# newest published build at or below the driver's version is chosen, from PyTorch's own index for that
# build (download.pytorch.org/whl/cuXY). TORCH_CUDA_BUILDS lists the builds to choose from (newest first);
# TORCH_CUDA_SPEC (e.g. "torch==2.13.0 --index-url URL") skips the choice.
set -euo pipefail
version=${1:?usage: torch_cuda.sh TORCH_VERSION}
builds=${TORCH_CUDA_BUILDS:-"130 129 128 126 124 121 118"}
if [ -n "${TORCH_CUDA_SPEC:-}" ]; then
  echo "install: TORCH_CUDA_SPEC given: $TORCH_CUDA_SPEC" >&2
  echo "$TORCH_CUDA_SPEC"
  exit 0
fi
driver=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' | head -n 1)
if [ -z "$driver" ]; then
  echo "install: nvidia-smi names no CUDA version; set TORCH_CUDA_SPEC (e.g. \"torch==$version --index-url https://download.pytorch.org/whl/cu124\")" >&2
  exit 2
fi
read -r major minor <<<"$driver"
have=$((major * 10 + minor))
for cu in $builds; do
  if [ "$cu" -le "$have" ]; then
    echo "install: the NVIDIA driver supports CUDA $major.$minor: torch==$version built for CUDA ${cu:0:-1}.${cu: -1} (cu$cu)" >&2
    echo "torch==$version --index-url https://download.pytorch.org/whl/cu$cu"
    exit 0
  fi
done
echo "install: the NVIDIA driver supports CUDA $major.$minor, older than every torch build listed ($builds); update the driver or set TORCH_CUDA_SPEC" >&2
exit 2
