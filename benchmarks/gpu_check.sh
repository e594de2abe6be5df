#!/usr/bin/env bash
# B1 on a CUDA GPU: a plain PyTorch loop on the GPU against one trialforge trial with
# train.use_gpu=true and one worker (in-process, holding the GPU). Prints the ratios and writes
# benchmarks/results/B1-overhead-gpu.json.
#
#   benchmarks/gpu_check.sh                   # installs what is missing with pip
#   WHEELS=/path/to/wheels benchmarks/gpu_check.sh   # offline: from a folder of wheels
#
# Uses the machine's own torch (it must see a GPU); other packages go to $SITE, not to the
# system. Tracking uses MLflow's file store, which the slim client (mlflow-skinny) carries.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
site=${SITE:-/tmp/trialforge-gpu-site}

"$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU is visible to torch")'

export PYTHONPATH="$PWD/platform:$site${PYTHONPATH:+:$PYTHONPATH}"
if ! "$python" -c 'import ray.tune, ray.train, mlflow, optuna, sqlalchemy, pydantic' 2>/dev/null; then
  if [ -n "${WHEELS:-}" ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$WHEELS"/*.whl
  else
    "$python" -m pip install -q --target "$site" 'ray[default,train,tune]>=2.60,<3' \
      'mlflow-skinny>=3.17,<4' 'optuna>=5,<6' 'sqlalchemy>=2,<3' 'pydantic>=2.7,<3' \
      typer rich pyyaml scikit-learn pandas
  fi
fi

home=$(mktemp -d)
export TRIALFORGE_HOME="$home" MLFLOW_ALLOW_FILE_STORE=true MLFLOW_TRACKING_URI="file://$home/mlruns"
export RAY_AIR_NEW_OUTPUT=0 MLFLOW_LOGGING_LEVEL=WARNING MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
cd benchmarks
"$python" overhead.py --gpu --repeats "${REPEATS:-3}"
