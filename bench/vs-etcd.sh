#!/usr/bin/env bash
# bench/vs-etcd.sh — Haven and etcd side by side on this machine.
#
# Measures, with the same client speaking etcd's v3 JSON API (`haven bench`):
#   * this disk's fsync floor (write 4 KiB + fdatasync, p50; overwriting a
#     preallocated file — the floor the targets use — and appending);
#   * a 3-member etcd on loopback: `bench kv` (puts; phases of 1,16,64,256
#     clients) and `bench failover` (leader SIGSTOPped → next acknowledged write);
#   * then a 3-station Haven cluster from `haven up`, the same two benchmarks;
# and prints one table with the Haven/etcd ratios. The 1-client phase runs
# once against the leader and once against a follower, each alone. The
# clusters run one after the other, never together. Everything started here
# is stopped on exit.
#
# Knobs (environment): DURATION (s per phase, default 10), PHASES (1,16,64,256),
# TRIALS (11), PORT_BASE (32379: etcd uses PORT_BASE+{0,100,200} for clients and
# +1 for peers), HAVEN_BIN / CLIENT_BIN (binaries to use instead of building).
# Exit status: 0 if both halves ran; 1 if either failed (the table still prints).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
PHASES=${PHASES:-1,16,64,256}
TRIALS=${TRIALS:-11}
PORT_BASE=${PORT_BASE:-32379}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/haven-vs-etcd.XXXXXX")
STARTED=()          # pids of every process this script started

log() { printf '== %s\n' "$*" >&2; }

cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
  STARTED=()
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_started() {
  local pid
  for pid in "${STARTED[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
  STARTED=()
}

# --- tools ------------------------------------------------------------------
if ! command -v etcd >/dev/null; then
  log "installing etcd-server from Debian"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y etcd-server >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y etcd-server >/dev/null; }
fi
command -v ss >/dev/null || { echo "vs-etcd.sh needs \`ss\` (Debian package iproute2)" >&2; exit 1; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${HAVEN_BIN:-}" ]; then
  log "building haven (release)"
  if (cd "$ROOT" && cargo build --release -q -p haven-server --bin haven 2>"$WORK/build-haven.log"); then
    HAVEN_BIN=$TARGET_DIR/release/haven
  else
    log "haven did not build (see below); the Haven half will be skipped"; tail -5 "$WORK/build-haven.log" >&2
    HAVEN_BIN=""
  fi
fi
# The benchmark client is haven itself (`haven bench kv|failover|fsync`,
# `haven member ls`): it speaks only etcd's v3 JSON API.
if [ -n "${CLIENT_BIN:-}" ]; then
  CLIENT=("$CLIENT_BIN")
elif [ -n "$HAVEN_BIN" ]; then
  CLIENT=("$HAVEN_BIN")
else
  echo "vs-etcd.sh needs the haven binary for its benchmark client; see the build error above" >&2
  exit 1
fi

# --- helpers ----------------------------------------------------------------
# json_num FILE SELECTOR FIELD: FIELD of the first JSON line of FILE containing SELECTOR.
json_num() {
  { grep -F -- "$2" "$1" 2>/dev/null || true; } | head -1 | sed -n "s/.*\"$3\":\([-0-9.eE+]*\).*/\1/p"
}

# sum_field FILE FIELD: the sum of FIELD over the JSON lines of FILE (empty if none).
sum_field() {
  [ -s "$1" ] || return 0
  sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | awk '{s += $1} END {if (NR) print s}'
}

# pid_on_port PORT: the pid listening on 127.0.0.1:PORT.
pid_on_port() {
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

# wait_writable ENDPOINTS: until a put succeeds (60 s at most).
wait_writable() {
  local deadline=$((SECONDS + 60))
  until "${CLIENT[@]}" kv put bench/ready 1 --endpoints "$1" --timeout-ms 2000 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "the cluster at $1 accepted no write within 60 s" >&2; return 1; }
    sleep 0.5
  done
}

# run_benchmarks NAME ENDPOINTS PIDS: bench kv and bench failover into $WORK/NAME-*.jsonl.
# A 1-client phase runs twice, once against the leader and once against a
# follower (which relays every write to the leader), into NAME-kv-leader.jsonl
# and NAME-kv-follower.jsonl: with a single endpoint its figures depend on
# that endpoint's role, which would otherwise change from run to run. The
# other phases spread their clients over every endpoint (NAME-kv.jsonl).
run_benchmarks() {
  local name=$1 endpoints=$2 pids=$3 leader follower url others role
  leader=$("${CLIENT[@]}" status --endpoints "$endpoints" 2>/dev/null \
    | awk '/\*/ { for (i = 1; i <= NF; i++) if ($i ~ /^http/) print $i }' | head -1) || true
  for url in ${endpoints//,/ }; do [ "$url" = "$leader" ] || { follower=$url; break; }; done
  others=$(echo ",$PHASES," | sed 's/,1,/,/g; s/^,//; s/,$//')
  if [[ ",$PHASES," == *,1,* ]]; then
    if [ -n "$leader" ]; then
      for role in leader follower; do
        url=${!role}
        log "$name: bench kv (put, 1 client, ${DURATION}s) on the $role $url"
        "${CLIENT[@]}" bench kv --endpoints "$url" --op put --phases 1 --duration "$DURATION" \
          --value-bytes 256 --output json | tee "$WORK/$name-kv-$role.jsonl"
      done
    else
      log "$name: no leader in \`status\`; the 1-client phases are skipped"
    fi
  fi
  if [ -n "$others" ]; then
    log "$name: bench kv (put, phases $others, ${DURATION}s each) on $endpoints"
    "${CLIENT[@]}" bench kv --endpoints "$endpoints" --op put --phases "$others" --duration "$DURATION" \
      --value-bytes 256 --output json | tee "$WORK/$name-kv.jsonl"
  fi
  log "$name: bench failover ($TRIALS trials), pids $pids"
  "${CLIENT[@]}" bench failover --endpoints "$endpoints" --pids "$pids" --trials "$TRIALS" --output json \
    | tee "$WORK/$name-failover.jsonl"
}

# --- the disk ---------------------------------------------------------------
# measure_fsync PASS: both fsync figures into $WORK/fsync-{append,prealloc}-PASS.json.
# Other load on the disk inflates them, so this runs before and after the
# clusters and the table takes the lower p50 of the two passes.
measure_fsync() {
  log "fsync floor of the disk under $WORK ($1)"
  "${CLIENT[@]}" bench fsync --dir "$WORK" --count 500 --output json > "$WORK/fsync-append-$1.json"
  "${CLIENT[@]}" bench fsync --dir "$WORK" --count 500 --preallocate --output json > "$WORK/fsync-prealloc-$1.json"
}
lower() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") print b; else if (b == "" || a + 0 < b + 0) print a; else print b }'; }
measure_fsync before

# --- etcd -------------------------------------------------------------------
ETCD_OK=1
start_etcd() {
  local cluster="" i
  for i in 0 1 2; do cluster+="${cluster:+,}e$i=http://127.0.0.1:$((PORT_BASE + 100 * i + 1))"; done
  for i in 0 1 2; do
    local client=http://127.0.0.1:$((PORT_BASE + 100 * i)) peer=http://127.0.0.1:$((PORT_BASE + 100 * i + 1))
    if [ -n "$(pid_on_port $((PORT_BASE + 100 * i)))" ] || [ -n "$(pid_on_port $((PORT_BASE + 100 * i + 1)))" ]; then
      echo "port $((PORT_BASE + 100 * i)) or $((PORT_BASE + 100 * i + 1)) is in use: set PORT_BASE to a free range" >&2
      return 1
    fi
    etcd --name "e$i" --data-dir "$WORK/etcd-e$i" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token vs-etcd \
      >"$WORK/etcd-e$i.log" 2>&1 &
    STARTED+=($!)
  done
  ETCD_ENDPOINTS="http://127.0.0.1:$PORT_BASE,http://127.0.0.1:$((PORT_BASE + 100)),http://127.0.0.1:$((PORT_BASE + 200))"
  ETCD_PIDS=$(IFS=,; echo "${STARTED[*]}")
}
log "etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members on loopback"
if start_etcd && wait_writable "$ETCD_ENDPOINTS"; then
  run_benchmarks etcd "$ETCD_ENDPOINTS" "$ETCD_PIDS" || ETCD_OK=0
else
  ETCD_OK=0
fi
stop_started

# --- Haven ------------------------------------------------------------------
HAVEN_OK=1
start_haven() {
  "$HAVEN_BIN" up --dir "$WORK/haven" >"$WORK/haven-up.log" 2>&1 &
  STARTED+=($!)
  local deadline=$((SECONDS + 60)) first=""
  until first=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/haven-up.log" | head -1) && [ -n "$first" ]; do
    [ $SECONDS -lt $deadline ] || { echo "haven up printed no endpoint within 60 s:" >&2; tail "$WORK/haven-up.log" >&2; return 1; }
    sleep 0.5
  done
  wait_writable "$first"
  # Every station's client URL from the member list, and the pid listening on each.
  HAVEN_ENDPOINTS=$("${CLIENT[@]}" member ls --endpoints "$first" --output json | grep -o '"clientURLs":\["[^"]*"' \
    | sed 's/.*\["//; s/"$//' | paste -sd, -)
  local url pids=""
  for url in ${HAVEN_ENDPOINTS//,/ }; do pids+="${pids:+,}$(pid_on_port "${url##*:}")"; done
  HAVEN_PIDS=$pids
}
log "Haven: 3 stations from \`haven up\` with default settings"
if start_haven; then
  run_benchmarks haven "$HAVEN_ENDPOINTS" "$HAVEN_PIDS" || HAVEN_OK=0
else
  HAVEN_OK=0
fi
stop_started

measure_fsync after
FSYNC_P50=$(lower "$(json_num "$WORK/fsync-prealloc-before.json" p50_ms p50_ms)" \
  "$(json_num "$WORK/fsync-prealloc-after.json" p50_ms p50_ms)")
FSYNC_APPEND_P50=$(lower "$(json_num "$WORK/fsync-append-before.json" p50_ms p50_ms)" \
  "$(json_num "$WORK/fsync-append-after.json" p50_ms p50_ms)")

# --- the table --------------------------------------------------------------
ratio() { # ratio HAVEN ETCD
  if [ -n "$1" ] && [ -n "$2" ] && awk "BEGIN{exit !($2 > 0)}"; then awk "BEGIN{printf \"%.2f\", $1 / $2}"; else echo "-"; fi
}
num() { # num VALUE DECIMALS: VALUE rounded, or "-" when missing
  if [ -n "$1" ]; then awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; else echo "-"; fi
}
row() { # row METRIC HAVEN ETCD TARGET [DECIMALS]
  printf '%-34s %12s %12s %12s  %s\n' "$1" "$(num "$2" "${5:-2}")" "$(num "$3" "${5:-2}")" "$(ratio "$2" "$3")" "$4"
}
echo
echo "Haven vs etcd — $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(uname -r)"
echo "fsync floor, 4 KiB write + fdatasync, p50 (lower of a pass before and after the clusters):" \
  "${FSYNC_P50:-?} ms overwriting a preallocated file, ${FSYNC_APPEND_P50:-?} ms appending"
printf '%-34s %12s %12s %12s  %s\n' METRIC HAVEN ETCD HAVEN/ETCD TARGET
# phase_rows LABEL FILE_SUFFIX CLIENTS: the rows of one phase.
phase_rows() {
  local label=$1 suffix=$2 clients=$3 sel="\"clients\":$3," target q
  local h_file="$WORK/haven-$suffix.jsonl" e_file="$WORK/etcd-$suffix.jsonl"
  target=""; [ "$clients" = 256 ] && target="ratio >= 3"
  row "writes/s, $label" "$(json_num "$h_file" "$sel" ops_per_s)" "$(json_num "$e_file" "$sel" ops_per_s)" "$target" 0
  for q in p50 p99 p999; do
    target=""
    [ "$clients" = 256 ] && [ $q = p99 ] && target="ratio <= 0.33"
    [ "$clients" = 1 ] && [ $q = p50 ] && target="haven <= 2.2 x fsync = $(awk "BEGIN{printf \"%.2f\", 2.2 * ${FSYNC_P50:-0}}") ms"
    row "  $q ms" "$(json_num "$h_file" "$sel" ${q}_ms)" "$(json_num "$e_file" "$sel" ${q}_ms)" "$target"
  done
}
for clients in ${PHASES//,/ }; do
  if [ "$clients" = 1 ]; then
    phase_rows "1 client -> leader" kv-leader 1
    phase_rows "1 client -> follower" kv-follower 1
  else
    phase_rows "$clients clients" kv "$clients"
  fi
done
# sum_kv NAME FIELD: FIELD summed over every kv phase of NAME.
sum_kv() {
  local f
  for f in "$WORK/$1-kv-leader.jsonl" "$WORK/$1-kv-follower.jsonl" "$WORK/$1-kv.jsonl"; do sum_field "$f" "$2"; done \
    | awk '{s += $1} END {if (NR) print s}'
}
row "errors during load" "$(sum_kv haven errors)" "$(sum_kv etcd errors)" "" 0
row "elections during load (term rise)" "$(sum_kv haven elections)" "$(sum_kv etcd elections)" "haven: 0" 0
row "leader freeze -> write, median ms" "$(json_num "$WORK/haven-failover.jsonl" median_ms median_ms)" \
  "$(json_num "$WORK/etcd-failover.jsonl" median_ms median_ms)" "haven <= 300 ms" 1
row "leader freeze -> write, max ms" "$(json_num "$WORK/haven-failover.jsonl" max_ms max_ms)" \
  "$(json_num "$WORK/etcd-failover.jsonl" max_ms max_ms)" "" 1
[ "$HAVEN_OK" = 1 ] || echo "Haven half: not run (see the messages above)."
[ "$ETCD_OK" = 1 ] || echo "etcd half: failed (see the messages above)."
[ "$HAVEN_OK" = 1 ] && [ "$ETCD_OK" = 1 ]
