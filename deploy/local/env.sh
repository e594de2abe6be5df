# Settings of the local cluster (sourced by start.sh, check.sh and stop.sh); override any of
# them in the environment. Everything it writes lives in $TF_CLUSTER_DIR.
: "${TF_CLUSTER_DIR:=$PWD/.trialforge-cluster}"
: "${RAY_PORT:=6379}"              # the head's GCS
: "${DASHBOARD_PORT:=8265}"        # Ray dashboard and Jobs API: trialforge job --cluster
: "${MLFLOW_PORT:=5000}"
: "${HEAD_CPUS:=1}"                # CPUs each node offers to trials
: "${WORKER_CPUS:=1}"
: "${HEAD_AGENT_PORT:=52365}"      # each node's dashboard agent needs its own port
: "${WORKER_AGENT_PORT:=52366}"
BIND=127.0.0.1                      # nothing listens beyond this machine
RAY_TEMP="$TF_CLUSTER_DIR/ray"  # Unix socket paths under it must stay below 108 bytes
export TF_CLUSTER_DIR RAY_PORT DASHBOARD_PORT MLFLOW_PORT
# Jobs must find `trialforge` and `mlflow` from the environment these scripts run in.
if ! command -v ray > /dev/null; then
  echo "ray not found: activate the environment trialforge is installed in (source .venv/bin/activate)" >&2
  exit 2
fi
PATH="$(dirname "$(command -v ray)"):$PATH"
export PATH
