#!/usr/bin/env bash
# The GPU path in one short run (benchmarks/gpu_check.py): on a machine with an NVIDIA GPU, torch
# with CUDA and onnxruntime-gpu it checks float16 generation on the CUDA execution provider against
# transformers on the GPU; without one it runs the same checks on the CPU and says what it skipped.
# Under 8 minutes on a GPU machine at the default size; `--size tiny` for a quick run anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
exec python benchmarks/gpu_check.py "$@"
