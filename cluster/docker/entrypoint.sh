#!/usr/bin/env bash
# Container entrypoint of the TrendFlow image in docker-compose: `head` or `worker`.
#   head    Ray head (GCS, dashboard, metrics), then migrations, the scheduler and the Serve app
#   worker  a Ray worker joining ${RAY_HEAD_ADDRESS:-ray-head:6379}
# Ray's gRPC runs with TLS when RAY_USE_TLS=1: each container signs its own node certificate
# (SAN: its container IP) with the CA mounted at /ca. The auth token comes from RAY_AUTH_TOKEN.
set -euo pipefail
role="${1:?usage: entrypoint.sh head|worker}"

if [ "${RAY_USE_TLS:-0}" = 1 ]; then
  bash /app/cluster/make-node-cert.sh /ca "$HOME/tls" >/dev/null
  export RAY_TLS_SERVER_CERT="$HOME/tls/node.crt" RAY_TLS_SERVER_KEY="$HOME/tls/node.key" \
         RAY_TLS_CA_CERT="$HOME/tls/ca.crt"
fi

common=(--object-manager-port=8076 --node-manager-port=8077 --metrics-export-port=8090
        --system-config='{"free_objects_period_milliseconds": 100}')
case "$role" in
  head)
    ray start --head --port=6379 --dashboard-host=0.0.0.0 --dashboard-port=8265 \
      --num-gpus=0 "${common[@]}"
    trendflow db migrate
    python -c "import ray; from trendflow.settings import get_settings; \
from trendflow.actors.scheduler import start_scheduler; ray.init(address='auto'); \
start_scheduler(get_settings())"
    serve deploy --address http://127.0.0.1:8265 /app/cluster/serve_config.cluster.yaml
    ;;
  worker)
    ray start --address="${RAY_HEAD_ADDRESS:-ray-head:6379}" "${common[@]}"
    ;;
  *)
    echo "unknown role $role (head|worker)" >&2; exit 64 ;;
esac
# Keep the container alive while this node's raylet lives; its exit ends the container.
while ray status --address "${RAY_HEAD_ADDRESS:-127.0.0.1:6379}" >/dev/null 2>&1; do sleep 30; done
echo "ray is no longer reachable; exiting" >&2
exit 1
