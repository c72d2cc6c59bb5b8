#!/usr/bin/env bash
# Runs every fieldvault test on a fresh machine: installs redis-server when
# it is missing, starts a standalone Redis (AOF, appendfsync always) and a
# 3-master Redis Cluster on loopback ports, runs the checks and the tests,
# then stops the servers.
#
# Vault Transit: no Vault server can be installed from the package registries
# here; the KEK suite runs against an in-process Transit-compatible server,
# and also against a real Vault or OpenBao when VAULT_ADDR and VAULT_TOKEN
# are set.
#
# Usage: .ci/test.sh [extra go test flags]
#   FIELDVAULT_RACE=0 skips the second pass under the race detector
#   (about 8 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

command -v go >/dev/null || { echo "go is required (https://go.dev/dl/)" >&2; exit 1; }

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  say "installing redis-server (Debian package)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi
redis-server --version

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fieldvault-test.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { # a loopback port nobody listens on
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
  done
}

start_redis() { # dir port [extra args...]
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always \
    --save "" --protected-mode no --daemonize no --logfile "$dir/redis.log" "$@" &
  PIDS+=($!)
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis on port $port did not start" >&2; cat "$dir/redis.log" >&2; exit 1
}

say "starting Redis (standalone and a 3-master cluster)"
P=$(free_port); start_redis "$WORK/standalone" "$P"
export FIELDVAULT_TEST_REDIS="127.0.0.1:$P"
SEEDS=()
for i in 1 2 3; do
  P=$(free_port)
  start_redis "$WORK/cluster$i" "$P" --cluster-enabled yes --cluster-config-file "nodes.conf" --cluster-node-timeout 5000
  SEEDS+=("127.0.0.1:$P")
done
redis-cli --cluster create "${SEEDS[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 200); do
  ok=1
  for s in "${SEEDS[@]}"; do
    redis-cli -h "${s%:*}" -p "${s#*:}" cluster info | grep -q cluster_state:ok || ok=0
  done
  [ $ok = 1 ] && break
  sleep 0.1
done
export FIELDVAULT_TEST_REDIS_CLUSTER=$(IFS=,; echo "${SEEDS[*]}")
echo "standalone: $FIELDVAULT_TEST_REDIS  cluster: $FIELDVAULT_TEST_REDIS_CLUSTER"
if [ -n "${VAULT_ADDR:-}" ] && [ -n "${VAULT_TOKEN:-}" ]; then
  echo "Vault: $VAULT_ADDR (the Transit KEK suite also runs against it)"
else
  echo "Vault: none (set VAULT_ADDR and VAULT_TOKEN to run the Transit KEK suite against a real Vault or OpenBao)"
fi

say "installing the deploy/ checkers (promtool, shellcheck, kustomize)"
if ! command -v promtool >/dev/null || ! command -v shellcheck >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus shellcheck >/dev/null
  # The package may start a Prometheus daemon; the tests only need promtool.
  ($SUDO systemctl stop prometheus || $SUDO service prometheus stop) >/dev/null 2>&1 || true
fi
GOBIN="$WORK/bin" go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
export PATH="$WORK/bin:$PATH" FIELDVAULT_DEPLOY_REQUIRE=promtool,shellcheck,kustomize

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi

say "go vet"
go vet ./...

say "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

say "go test"
go test -count=1 -timeout 30m "$@" ./...

if [ "${FIELDVAULT_RACE:-1}" != 0 ]; then
  say "go test -race"
  go test -race -count=1 -timeout 40m "$@" ./...
fi

say "all tests passed"
