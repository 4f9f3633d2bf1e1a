#!/usr/bin/env bash
# Runs `haven bench raft-core` and the openraft-minimal benchmark (same shape:
# 3 members in one process, in-memory, 1 and 256 closed-loop clients, 64-byte
# puts, the same write counts) one after the other, and prints one table.
#
# Usage: bench/raft-core.sh [WRITES]   (WRITES: the 1-client run's writes;
#        the 256-client run does 10 times as many; default: haven's own)
# Env:   HAVEN_TARGET_DIR, OPENRAFT_TARGET_DIR: cargo target dirs to build in.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
haven_target="${HAVEN_TARGET_DIR:-$root/target}"
openraft_target="${OPENRAFT_TARGET_DIR:-$root/bench/openraft-minimal/target}"
writes_args=()
if [[ $# -gt 0 ]]; then
  [[ "$1" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [WRITES]" >&2; exit 2; }
  writes_args=(--writes "$1")
fi

echo "building haven (release) in $haven_target" >&2
(cd "$root" && CARGO_TARGET_DIR="$haven_target" cargo build --quiet --release --bin haven)
echo "building openraft-minimal (release) in $openraft_target" >&2
(cd "$root/bench/openraft-minimal" && CARGO_TARGET_DIR="$openraft_target" cargo build --quiet --release)

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
# One after the other, never at once: each gets the whole machine.
"$haven_target/release/haven" bench raft-core "${writes_args[@]}" | tee "$out/haven" >&2
"$openraft_target/release/openraft-minimal" "${writes_args[@]}" | tee "$out/openraft" >&2
"$openraft_target/release/openraft-minimal" --worker-threads 1 "${writes_args[@]}" | tee "$out/openraft1" >&2
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# Prints "clients writes_per_s" for each run line of a bench's output.
rates() { sed -n 's/^clients=\([0-9]*\) .*writes_per_s=\([0-9.]*\).*/\1 \2/p' "$1"; }

echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "load average (1/5/15 min) before: $load_before, after: $load_after"
echo "openraft: $(grep -o '[0-9]* tokio worker thread(s)' "$out/openraft"); openraft-1t: a current-thread runtime"
echo
join <(rates "$out/haven" | sort) <(rates "$out/openraft" | sort) \
  | join - <(rates "$out/openraft1" | sort) \
  | sort -n \
  | awk 'BEGIN {
           printf "%8s %16s %19s %12s %22s %15s\n", "clients", "haven writes/s", "openraft writes/s",
             "haven/openraft", "openraft-1t writes/s", "haven/openraft-1t"
         }
         { printf "%8d %16.0f %19.0f %12.3f %22.0f %15.3f\n", $1, $2, $3, $2 / $3, $4, $2 / $4 }'
