#!/usr/bin/env bash
# The GPU checks of benchmarks/gpu.py in one call, on a machine with a CUDA GPU: B1 on the GPU,
# four trials sharing it at gpu_fraction=0.25, bf16 / compile / channels-last / pinned batches
# against fp32, and 2-worker DDP where there are two GPUs. Prints one table and writes
# benchmarks/results/gpu-check.json. About 5 minutes on one recent GPU.
#
#   benchmarks/gpu_check.sh                          # installs what is missing with pip
#   WHEELS=/path/to/wheels benchmarks/gpu_check.sh   # offline: from a folder of wheels
#
# Uses the machine's torch when it sees a GPU, else installs PyPI's default (CUDA) build of
# torch. Other packages go to $SITE, not to the system. Tracking uses MLflow's file store,
# which the slim client (mlflow-skinny) carries.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
site=${SITE:-/tmp/trialforge-gpu-site}
export PYTHONPATH="$PWD/platform:$site${PYTHONPATH:+:$PYTHONPATH}"

install() {  # pip install "$@" into $site, from $WHEELS when given
  if [ -n "${WHEELS:-}" ]; then
    "$python" -m pip install -q --no-index --find-links "$WHEELS" --target "$site" "$@"
  else
    "$python" -m pip install -q --target "$site" "$@"
  fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  || { echo "no NVIDIA GPU: nvidia-smi failed" >&2; exit 1; }
if ! "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  install 'torch>=2.5'  # PyPI's Linux wheel is the CUDA build
fi
"$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else
  f"torch {torch.__version__} sees no CUDA GPU (CUDA build: {torch.version.cuda})")'
if ! "$python" -c 'import ray.tune, ray.train, mlflow, optuna, sqlalchemy, pydantic' 2>/dev/null
then
  install 'ray[default,train,tune]>=2.60,<3' 'mlflow-skinny>=3.17,<4' 'optuna>=5,<6' \
    'sqlalchemy>=2,<3' 'pydantic>=2.7,<3' typer rich pyyaml pandas psutil
fi

home=$(mktemp -d)
export TRIALFORGE_HOME="$home" MLFLOW_ALLOW_FILE_STORE=true MLFLOW_TRACKING_URI="file://$home/mlruns"
export RAY_AIR_NEW_OUTPUT=0 MLFLOW_LOGGING_LEVEL=WARNING MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
cd benchmarks
"$python" gpu.py "$@"
rm -rf "$home"
