#!/usr/bin/env bash
# Regenerates bench/RESULTS.md: machine information, the commands, the
# HTTP load runs (embedded Pebble and, when redis-server is installed and
# the Redis store is built in, Redis with AOF appendfsync always), single
# and batch, tokenise and detokenise, a prefilled store, rewrap throughput,
# the in-process Go benchmarks, and CPU profiles of the hot paths.
#
# Usage: bench/run.sh
# Settings (environment): BENCH_DURATION (20s), BENCH_WARMUP (5s),
# BENCH_CONCURRENCY (32), BENCH_PREFILL (10000000 tokens for the p99 check),
# BENCH_REWRAP_PREFILL (1000000), GOBENCH_TIME (1s), BENCH_OUT (bench/RESULTS.md),
# BENCH_KEEP=1 keeps the work directory (JSON reports, plots, profiles).
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${BENCH_DURATION:-20s}
WARM=${BENCH_WARMUP:-5s}
CONC=${BENCH_CONCURRENCY:-32}
PREFILL=${BENCH_PREFILL:-10000000}
REWRAP_PREFILL=${BENCH_REWRAP_PREFILL:-1000000}
GOBENCH_TIME=${GOBENCH_TIME:-1s}
OUT=${BENCH_OUT:-bench/RESULTS.md}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fieldvault-bench.XXXXXX")
REDIS_PID=""
cleanup() {
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/json" "$WORK/txt" "$WORK/log" "$WORK/prof" "$WORK/plot"
say() { printf '==> %s\n' "$*" >&2; }

say "building fieldvault"
BIN="$WORK/fieldvault"
go build -o "$BIN" ./cmd/fieldvault

LOAD_START=$(uptime)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -v ' bench/' | awk '{print $2}' | tr '\n' ' ' || true)
COMMANDS=()
FAILED=()
RUNS=() # JSON reports, in run order

# bench NAME ARGS...: one `fieldvault bench` invocation on a fresh server;
# its report goes to json/NAME.json. Results are labelled LABEL/SCENARIO
# (--label in ARGS); the targets read pebble/..., redis/... and
# pebble-prefilled/....
bench() {
  local label=$1; shift
  local cmd=("$BIN" bench --start -c "$CONC" --duration "$DUR" --warmup "$WARM"
    --json "$WORK/json/$label.json" --plot "$WORK/plot/$label.html" "$@")
  COMMANDS+=("fieldvault bench --start -c $CONC --duration $DUR --warmup $WARM $*")
  say "$label: $* (load $(cut -d' ' -f1-3 /proc/loadavg))"
  if ! "${cmd[@]}" >"$WORK/txt/$label.txt" 2>"$WORK/log/$label.log"; then
    FAILED+=("$label: $(grep -h 'error' "$WORK/log/$label.log" | tail -1)")
    rm -f "$WORK/json/$label.json"
    return 1
  fi
  RUNS+=("$WORK/json/$label.json")
  cat "$WORK/txt/$label.txt" >&2
}

# --- embedded (Pebble) ------------------------------------------------------
for sc in tokenize detokenize tokenize-batch detokenize-batch mixed deterministic; do
  bench "pebble-$sc" --label pebble --scenario "$sc" || true
done

# Open loop at half the closed-loop tokenise throughput: latency measured from
# each request's intended start.
RATE=""
if [ -f "$WORK/json/pebble-tokenize.json" ]; then
  RPS=$(grep -m1 '"requests_per_sec"' "$WORK/json/pebble-tokenize.json" | tr -dc '0-9.')
  RATE=$(awk -v r="$RPS" 'BEGIN { printf "%d", r / 2 }')
fi
if [ -n "$RATE" ] && [ "$RATE" -gt 0 ]; then
  bench "pebble-open" --label pebble-open-loop --scenario tokenize --rate "$RATE" -c 128 || true
fi

# A store holding PREFILL tokens: the p99 must stay within 1.5x the empty one.
bench pebble-prefilled --label pebble-prefilled --scenario tokenize,detokenize --prefill "$PREFILL" || true
# Rewrap after a rotation.
bench pebble-rewrap --label pebble --scenario rewrap --prefill "$REWRAP_PREFILL" || true

# --- Redis ------------------------------------------------------------------
REDIS_NOTE=""
if command -v redis-server >/dev/null; then
  RPORT=""
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then RPORT=$p; break; fi
  done
  mkdir -p "$WORK/redis"
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes --appendfsync always \
    --save "" --protected-mode no --daemonize no --logfile "$WORK/redis/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$RPORT") 2>/dev/null && break
    sleep 0.05
  done
  REDIS_URL="redis://127.0.0.1:$RPORT/0"
  say "redis-server $(redis-server --version | awk '{print $3}') on $RPORT (AOF, appendfsync always)"
  if bench redis-tokenize --label redis --scenario tokenize --store "$REDIS_URL"; then
    for sc in detokenize tokenize-batch detokenize-batch; do
      redis-cli -p "$RPORT" flushall >/dev/null 2>&1 || true
      bench "redis-$sc" --label redis --scenario "$sc" --store "$REDIS_URL" || true
    done
    redis-cli -p "$RPORT" flushall >/dev/null 2>&1 || true
    bench redis-rewrap --label redis --scenario rewrap --prefill "$REWRAP_PREFILL" --store "$REDIS_URL" || true
  else
    REDIS_NOTE="The Redis store is not available in this build yet (the server said: $(grep -ho 'error: .*' "$WORK/log/redis-tokenize.log" | tail -1 | cut -c1-200)). Rerun bench/run.sh once it lands."
    FAILED=("${FAILED[@]:0:${#FAILED[@]}-1}")
  fi
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=""
else
  REDIS_NOTE="redis-server is not installed (apt-get install redis-server); the Redis runs were skipped."
fi

# --- CPU profiles -------------------------------------------------------------
# The server runs inside the bench process (--inprocess), so one profile sees
# the HTTP server, the vault and the load generator.
PROFILES=()
for sc in tokenize detokenize tokenize-batch detokenize-batch; do
  say "profile $sc (in-process)"
  if "$BIN" bench --inprocess --quiet -c "$CONC" --duration "$DUR" --warmup "$WARM" --scenario "$sc" \
      --cpuprofile "$WORK/prof/http-$sc.pprof" --json "$WORK/prof/http-$sc.json" >"$WORK/prof/http-$sc.txt" 2>"$WORK/prof/http-$sc.log"; then
    PROFILES+=("$sc")
  fi
done

# Single-field tokenise on a store that already holds tokens: where the extra
# time of a big store goes.
PPREFILL=${BENCH_PROFILE_PREFILL:-3000000}
say "profile tokenize on a store prefilled with $PPREFILL tokens (in-process)"
if "$BIN" bench --inprocess --quiet -c "$CONC" --duration "$DUR" --warmup "$WARM" --scenario tokenize --prefill "$PPREFILL" \
    --cpuprofile "$WORK/prof/http-tokenize-prefilled.pprof" --json "$WORK/prof/http-tokenize-prefilled.json" \
    >"$WORK/prof/http-tokenize-prefilled.txt" 2>"$WORK/prof/http-tokenize-prefilled.log"; then
  PROFILES+=("tokenize-prefilled")
fi

# --- Go benchmarks ------------------------------------------------------------
say "go test -bench (tokenizer, keys, vault, bench)"
GOBENCH="$WORK/gobench.txt"
go test -run '^$' -bench . -benchmem -benchtime "$GOBENCH_TIME" -timeout 60m \
  ./tokenizer/... ./keys/... ./vault/... ./bench/ >"$GOBENCH" 2>&1 || true
for b in VaultTokenizeSingle VaultDetokenizeSingle VaultTokenizeBatch1000 VaultDetokenizeBatch1000; do
  go test -run '^$' -bench "^Benchmark$b\$" -benchtime 3s -cpuprofile "$WORK/prof/go-$b.pprof" \
    -o "$WORK/prof/bench.test" ./bench/ >"$WORK/prof/go-$b.txt" 2>&1 || true
done

LOAD_END=$(uptime)

# --- RESULTS.md ---------------------------------------------------------------
say "writing $OUT"
report() { if [ ${#RUNS[@]} -gt 0 ]; then "$BIN" bench report --section "$1" "${RUNS[@]}"; else echo "(no runs succeeded)"; fi; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
top() { # profile binary
  go tool pprof -top -nodecount=22 "$2" "$1" 2>/dev/null | sed -n '/^Duration:/p; /flat%/,$p'
}
topfv() { # cumulative: fieldvault functions, and Pebble's level iterators (LSM depth)
  go tool pprof -top -cum -nodecount=600 "$2" "$1" 2>/dev/null |
    grep -E 'fieldvault/fieldvault/|pebble/v2\.\(\*levelIter\)\.SeekGE|pebble/v2\.\(\*mergingIter\)\.SeekGE|log/slog\.\(\*Logger\)\.log$' |
    grep -v -E '/bench\.|^.*main\.instr' | head -18
}
{
cat <<EOF
# fieldvault bench results

Regenerate with \`bench/run.sh\` (about 45 minutes). Every figure below was measured by that script on
$(date -u '+%Y-%m-%d %H:%M UTC'), with the load generator, the server and (for the Redis runs) redis-server on the same 2 cores: read each
figure together with the load average printed beside it. A load above 2 means they were competing for
the CPUs, so these are lower bounds of what the code can do on a machine of its own.

## Machine

| | |
|---|---|
| CPU | $cpu |
| cores | $(nproc) |
| kernel | $(uname -sr) |
| Go | $(go version | awk '{print $3}') |
| load at start (\`uptime\`) | load average${LOAD_START##*load average} |
| load at end | load average${LOAD_END##*load average} |
| code | commit $COMMIT${DIRTY:+, plus uncommitted work in progress of other engineers in: $DIRTY} |
| Redis | $(command -v redis-server >/dev/null && redis-server --version | awk '{print $3}' || echo "not installed") |

The bench and the server share the machine's $(nproc) cores (the load generator costs CPU too). The server
is \`fieldvault serve --dev\` with its defaults (Pebble store with a synced WAL, local KEK, file audit log,
access log at info level into a file), started fresh for every invocation.

## Targets

$(report targets)

Each run's label is \`<store>/<scenario>\`; concurrency $CONC, closed loop, ${WARM} warm-up then ${DUR}
measured, unless the table says otherwise. "Prefilled" is a store holding $(printf "%'d" "$PREFILL") tokens
before measuring.

## Against Vault/OpenBao Transit

No Vault or OpenBao server can be installed here, so the Transit column holds the **reference figures the
project measured with OpenBao 2.6.2 in dev mode on this machine class (concurrency 32), not figures measured
today**. The Transit driver (\`--baseline transit\`) is functionally tested against keys/kek/transittest; with
a real server, \`fieldvault bench --scenario tokenize --baseline transit --vault-addr ... --vault-token ...\`
prints both side by side with their ratio. Note what each side does: a Transit encrypt is one AES-GCM
operation under one key; a fieldvault tokenise also normalises the value, generates a format-preserving
token, encrypts under the subject's data key and durably stores the row; a detokenise also checks the
consent and writes a hash-chained audit record before answering.

$(report reference)

## All runs

$(report results)

EOF
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "Runs that failed:"
  echo
  for f in "${FAILED[@]}"; do echo "- $f"; done
  echo
fi
echo "### Redis"
echo
if [ -n "$REDIS_NOTE" ]; then echo "$REDIS_NOTE"; else echo "Redis $(redis-server --version | awk '{print $3}'), standalone, AOF with appendfsync always, started by bench/run.sh; the runs are labelled redis/..."; fi
echo
echo "## Commands"
echo
echo '```sh'
for c in "${COMMANDS[@]}"; do echo "$c"; done
echo '```'
echo
echo "Plots (latency by percentile, throughput and p99 over time) are written with \`--plot FILE.html\`;"
echo "run with \`BENCH_KEEP=1\` to keep this run's plots, JSON reports and profiles."
echo
echo "## In-process Go benchmarks"
echo
echo "\`go test -run '^\$' -bench . -benchmem -benchtime $GOBENCH_TIME ./tokenizer/... ./keys/... ./vault/... ./bench/\`"
echo "(load at end of run: $(cut -d' ' -f1-3 /proc/loadavg)). The bench/ ones call the vault directly (no HTTP),"
echo "16 goroutines per CPU."
echo
echo "| package | benchmark | ns/op | B/op | allocs/op | other |"
echo "|---|---|--:|--:|--:|---|"
awk '
  /^pkg: / { pkg = $2; sub("github.com/fieldvault/fieldvault/", "", pkg) }
  /^Benchmark/ && /ns\/op/ {
    name = $1; sub(/-[0-9]+$/, "", name); ns = ""; bop = ""; al = ""; other = ""
    for (i = 3; i < NF; i += 2) {
      v = $i; u = $(i+1)
      if (u == "ns/op") ns = v; else if (u == "B/op") bop = v; else if (u == "allocs/op") al = v;
      else other = other (other == "" ? "" : ", ") v " " u
    }
    printf "| %s | %s | %s | %s | %s | %s |\n", pkg, name, ns, bop, al, other
  }' "$GOBENCH"
if grep -q -E '^(FAIL|panic|--- FAIL)' "$GOBENCH"; then
  echo
  echo "Some benchmark packages failed to build or run:"
  echo
  echo '```'
  grep -E '^(FAIL|panic|--- FAIL)' "$GOBENCH" | head -10
  echo '```'
fi
echo
echo "## What bounds it (CPU profiles)"
echo
echo "Profiles of \`fieldvault bench --inprocess --scenario S --cpuprofile FILE\` (server, vault and load"
echo "generator in one process, so the HTTP and JSON costs are visible), and of the bench/ Go benchmarks"
echo "(vault only). Tables from \`go tool pprof -top\`; the interpretation follows them."
for sc in "${PROFILES[@]}"; do
  echo
  if [ "$sc" = tokenize-prefilled ]; then
    echo "### HTTP, tokenize on a store prefilled with $(printf "%'d" "$PPREFILL") tokens (in-process)"
  else
    echo "### HTTP, $sc (in-process)"
  fi
  echo
  echo '```'
  grep -E '^(prefill|  *target|  *fieldvault)' "$WORK/prof/http-$sc.txt" | head -4
  top "$WORK/prof/http-$sc.pprof" "$BIN"
  echo '```'
  echo
  echo "fieldvault functions by cumulative time:"
  echo
  echo '```'
  topfv "$WORK/prof/http-$sc.pprof" "$BIN"
  echo '```'
done
for b in VaultTokenizeSingle VaultDetokenizeSingle VaultTokenizeBatch1000 VaultDetokenizeBatch1000; do
  [ -f "$WORK/prof/go-$b.pprof" ] || continue
  echo
  echo "### Go benchmark $b (vault only)"
  echo
  echo '```'
  grep '^Benchmark' "$WORK/prof/go-$b.txt" || true
  top "$WORK/prof/go-$b.pprof" "$WORK/prof/bench.test"
  echo '```'
done
echo
if [ -f bench/analysis.md ]; then cat bench/analysis.md; fi
} >"$OUT"
say "done: $OUT"
