#!/usr/bin/env bash
# Accelerator check (issue 20): install the accelerator JAX build, then print the table of
# video_s3d.accel_check and write it as JSON. Run from the repository root on a GPU machine:
#   launch/accelerator_check.sh [out.json]      # extra args go to python -m video_s3d.accel_check
# JAX_PLATFORM: cuda12 (default) or tpu. PYTHON: the interpreter (default python3).
set -euo pipefail
out="${1:-accel_check.json}"
shift || true
python="${PYTHON:-python3}"
platform="${JAX_PLATFORM:-cuda12}"
jax_version="$("$python" -c 'import jax; print(jax.__version__)')"
"$python" -m pip install --quiet "jax[${platform}]==${jax_version}"
# TensorFlow (the input pipeline) stays off the accelerator; JAX may take what it needs.
export TF_CPP_MIN_LOG_LEVEL=2
export XLA_PYTHON_CLIENT_PREALLOCATE=false
exec timeout 480 "$python" -m video_s3d.accel_check --out="$out" "$@"
