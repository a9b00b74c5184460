#!/bin/sh
# Prints the pip arguments that install the torch build fitting this machine; the Makefile uses it
# unless TORCH_SPEC is given (`make install TORCH_SPEC="torch==2.5.1"`).
#   1. a torch wheel pip finds with no index at all (a find-links wheelhouse on this disk): use it,
#      it is what the machine was provisioned with;
#   2. else nvidia-smi is present: PyPI's default torch, which is the CUDA build;
#   3. else the CPU-only wheel from download.pytorch.org, a fraction of the CUDA build's download.
# Usage: scripts/torch_spec.sh PIP [LOCAL_SPEC]   (LOCAL_SPEC defaults to torch==2.13.0)
set -eu
pip="$1"
local_spec="${2:-torch==2.13.0}"
if "$pip" install --dry-run --quiet --no-index --no-deps "$local_spec" >/dev/null 2>&1; then
    echo "$local_spec"
elif command -v nvidia-smi >/dev/null 2>&1; then
    echo "torch"
else
    echo "torch --index-url https://download.pytorch.org/whl/cpu"
fi
