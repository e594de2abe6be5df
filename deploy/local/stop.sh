#!/usr/bin/env bash
# Stop this cluster's processes only: `ray stop` would end every Ray on the machine.
set -uo pipefail
source "$(dirname "$0")/env.sh"
if [[ -f "$TF_CLUSTER_DIR/mlflow.pid" ]]; then
  pid=$(cat "$TF_CLUSTER_DIR/mlflow.pid")
  pkill -TERM -P "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
  rm -f "$TF_CLUSTER_DIR/mlflow.pid"
fi
# Both nodes' processes name this cluster's session folder; their children go with them.
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
# (and the head's client server, which names the head's GCS port instead).
roots=$( (pgrep -f -- "$RAY_TEMP/"; pgrep -f -- "ray.util.client.server --address=[^ ]*:$RAY_PORT ") || true)
pids=$(for pid in $roots; do echo "$pid"; descendants "$pid"; done | sort -u)
[[ -n "$pids" ]] && kill -TERM $pids 2>/dev/null
for _ in $(seq 20); do
  alive=$(for pid in $pids; do kill -0 "$pid" 2>/dev/null && echo "$pid"; done)
  [[ -z "$alive" ]] && break
  sleep 0.5
done
[[ -n "${alive:-}" ]] && kill -KILL $alive 2>/dev/null
echo "stopped the cluster in $TF_CLUSTER_DIR"
