#!/usr/bin/env bash
# Check the local cluster: both Ray nodes alive, the Jobs API and MLflow answering.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$TF_CLUSTER_DIR/auth_token"
for _ in $(seq 60); do
  nodes=$(ray list nodes --address "http://$BIND:$DASHBOARD_PORT" --filter "state=ALIVE" \
            --format json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' \
          || echo 0)
  mlflow=$(curl -fsS "http://$BIND:$MLFLOW_PORT/health" 2>/dev/null || true)
  if [[ "$nodes" -ge 2 && "$mlflow" == "OK" ]]; then
    echo "ok: $nodes Ray nodes alive, Jobs API on http://$BIND:$DASHBOARD_PORT, MLflow on http://$BIND:$MLFLOW_PORT"
    exit 0
  fi
  sleep 1
done
echo "not ready: $nodes Ray nodes alive, MLflow health '${mlflow}'; logs in $TF_CLUSTER_DIR" >&2
exit 1
