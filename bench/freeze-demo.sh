#!/usr/bin/env bash
# bench/freeze-demo.sh — the demo's failover with the whole cluster stalled.
#
# Runs `haven demo` and, right after its machine crash, stops every Haven
# process but the demo itself (stations, agents, instance shims and the web
# instances) with SIGSTOP for FREEZE_MS, then resumes them: what a VM that
# stalls in the middle of a failover does to a cluster. The agents must
# self-fence (their clocks ran on), the stations must keep their leader
# (stall forgiveness), and the demo must still end with web active and exit 0.
#
# Knobs (environment): FREEZE_MS (1200), DELAY_S (0.3: seconds after the
# crash), RUNS (4), HAVEN_BIN (a built binary; default: build the release one).
# Exit status: 0 if every run's demo exited 0. Each run's output and cluster
# directory are kept under a temporary directory, printed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FREEZE_MS=${FREEZE_MS:-1200}
DELAY_S=${DELAY_S:-0.3}
RUNS=${RUNS:-4}
if [ -z "${HAVEN_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin haven >&2)
  HAVEN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/haven"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/haven-freeze-demo.XXXXXX")
frozen=()
trap '[ ${#frozen[@]} -eq 0 ] || kill -CONT "${frozen[@]}" 2>/dev/null || true' EXIT

failed=0
for run in $(seq 1 "$RUNS"); do
  out="$WORK/run$run.out"
  "$HAVEN_BIN" demo --dir "$WORK/run$run" >"$out" 2>&1 &
  demo=$!
  for _ in $(seq 1 1500); do grep -q CRASH "$out" && break; sleep 0.02; done
  sleep "$DELAY_S"
  # Every process of this run's cluster: they all run the same binary and
  # name the run's directory (stations, agents) or descend from one that does.
  mapfile -t frozen < <(pgrep -f -- "$WORK/run$run" | grep -vx "$demo" || true)
  for pid in "${frozen[@]}"; do pgrep -P "$pid" || true; done > "$WORK/children"
  mapfile -t -O "${#frozen[@]}" frozen < "$WORK/children"
  kill -STOP "${frozen[@]}" 2>/dev/null || true
  sleep "$(awk "BEGIN { print $FREEZE_MS / 1000 }")"
  kill -CONT "${frozen[@]}" 2>/dev/null || true
  frozen=()
  if wait "$demo"; then verdict="exit 0"; else verdict="FAILED"; failed=1; fi
  printf 'run %d: froze %s ms, %s; %s\n' "$run" "$FREEZE_MS" "$verdict" \
    "$(grep -E 'reports web active|answers again' "$out" | tail -1 | sed 's/^ *//')"
done
echo "outputs and cluster logs: $WORK"
exit "$failed"
