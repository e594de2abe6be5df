#!/usr/bin/env bash
# Start a real multi-process cluster on this machine: a Ray head, a second Ray node, and an
# MLflow tracking server, all on 127.0.0.1, Ray's token authentication on.
# Then: source "$TF_CLUSTER_DIR/cluster.env" and `trialforge job submit SPEC --cluster ...`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
mkdir -p "$TF_CLUSTER_DIR/mlflow-artifacts" "$RAY_TEMP" "$TF_CLUSTER_DIR/shared"
chmod 700 "$TF_CLUSTER_DIR"

# Ray's token: the caller's RAY_AUTH_TOKEN, or one generated once for this cluster (0600).
token_file="$TF_CLUSTER_DIR/auth_token"
if [[ -n "${RAY_AUTH_TOKEN:-}" ]]; then
  printf '%s' "$RAY_AUTH_TOKEN" > "$token_file"
elif [[ ! -s "$token_file" ]]; then
  python3 -c 'import secrets; print(secrets.token_hex(32), end="")' > "$token_file"
fi
chmod 600 "$token_file"
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$token_file"
unset RAY_AUTH_TOKEN RAY_ADDRESS

echo "starting the Ray head (dashboard on $BIND:$DASHBOARD_PORT)"
ray start --head --port "$RAY_PORT" --node-ip-address "$BIND" \
  --dashboard-host "$BIND" --dashboard-port "$DASHBOARD_PORT" \
  --dashboard-agent-listen-port "$HEAD_AGENT_PORT" --num-cpus "$HEAD_CPUS" \
  --temp-dir "$RAY_TEMP" --disable-usage-stats > "$TF_CLUSTER_DIR/ray-head.log" 2>&1
echo "starting a second Ray node"
# Its own temp folder: two nodes sharing one would each clean up the other's job packages.
ray start --address "$BIND:$RAY_PORT" --node-ip-address "$BIND" \
  --dashboard-agent-listen-port "$WORKER_AGENT_PORT" --num-cpus "$WORKER_CPUS" \
  --temp-dir "$RAY_TEMP/w" --disable-usage-stats > "$TF_CLUSTER_DIR/ray-worker.log" 2>&1

echo "starting the MLflow server on $BIND:$MLFLOW_PORT"
# Job execution off and one worker: 2 processes and ~0.4 GB instead of 8 and ~1.9 GB.
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false nohup mlflow server --host "$BIND" \
  --port "$MLFLOW_PORT" --workers 1 \
  --backend-store-uri "sqlite:///$TF_CLUSTER_DIR/mlflow.db" \
  --artifacts-destination "$TF_CLUSTER_DIR/mlflow-artifacts" \
  > "$TF_CLUSTER_DIR/mlflow.log" 2>&1 &
echo $! > "$TF_CLUSTER_DIR/mlflow.pid"

# RAY_AUTH_MODE: Ray's own CLI (`ray job submit`, `ray status`) sends the token only with it.
cat > "$TF_CLUSTER_DIR/cluster.env" <<ENV
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH="$token_file"
export TRIALFORGE_CLUSTER="http://$BIND:$DASHBOARD_PORT"
export MLFLOW_TRACKING_URI="http://$BIND:$MLFLOW_PORT"
export TRIALFORGE_DB="sqlite:///$TF_CLUSTER_DIR/shared/trialforge.db"
export TRIALFORGE_HOME="$TF_CLUSTER_DIR/shared"
ENV
"$(dirname "$0")/check.sh"
echo "ready: source $TF_CLUSTER_DIR/cluster.env, then"
echo '  trialforge job submit jobs/cnn_digits.yaml --cluster "$TRIALFORGE_CLUSTER"'
