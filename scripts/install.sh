#!/usr/bin/env bash
# Installs freqscope and its dependencies into the virtual environment $VENV.
#
# torch is handled first and on its own, so that pip never resolves it as a
# dependency (which would pull the newest CUDA build onto a CPU-only machine):
#   1. a torch that the environment can already import is kept as it is;
#   2. on a machine with an NVIDIA driver, torch==$TORCH_VERSION built for the
#      newest CUDA the driver supports (scripts/torch_cuda.sh reads it from
#      nvidia-smi and says which build it chose; TORCH_CUDA_SPEC overrides);
#   3. otherwise `pip install $TORCH_CPU_SPEC` (default torch==$TORCH_VERSION,
#      which the package mirror here serves as a CPU build; set TORCH_CPU_SPEC and
#      PIP_EXTRA_INDEX_URL to point at another CPU wheel elsewhere).
# The venv is created with --system-site-packages so that a user's existing
# torch (installed system-wide or in the active environment) stays visible.
set -euo pipefail
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-test}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_CPU_SPEC=${TORCH_CPU_SPEC:-torch==$TORCH_VERSION}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "install: creating $VENV (system site-packages visible)"
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
py="$VENV/bin/python"

if "$py" -c "import torch" 2>/dev/null; then
  echo "install: keeping torch $("$py" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  spec=$(bash "$(dirname "$0")/torch_cuda.sh" "$TORCH_VERSION")
  # shellcheck disable=SC2086  # the spec is pip arguments: a requirement and its index
  "$py" -m pip install --quiet $spec
else
  echo "install: no torch and no GPU, installing $TORCH_CPU_SPEC (CPU build)"
  "$py" -m pip install --quiet "$TORCH_CPU_SPEC"
fi

"$py" -m pip install --quiet -e ".[$EXTRAS]"
touch "$VENV/.installed"
echo "install: done ($("$py" -c 'import torch, diffusers, av; print("torch", torch.__version__, "| diffusers", diffusers.__version__, "| av", av.__version__)'))"
