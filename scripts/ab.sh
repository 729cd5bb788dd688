#!/usr/bin/env bash
# A/B of two sluice server binaries on one bench scenario, in measures that hold up on a busy
# 2-core machine (throughput alone does not: other builds move it by 2x between runs).
#
#   scripts/ab.sh cpu       BEFORE AFTER [PAIRS] -- BENCH_ARGS...
#   scripts/ab.sh callgrind BEFORE AFTER         -- BENCH_ARGS...
#
#   e.g. scripts/ab.sh cpu /tmp/sluice-b940a09 target/release/sluice 3 -- send --batch 10
#
# One binary in two settings: A_ENV / B_ENV are extra environment (`NAME=value ...`) for the A / B
# server, A_BENCH_ARGS / B_BENCH_ARGS extra sluice-bench options for its runs, e.g. auth off vs on:
#   B_ENV="SLUICE_ACCESS_KEY_ID=AKID SLUICE_SECRET_ACCESS_KEY=SECRET" \
#   B_BENCH_ARGS="--access-key-id AKID --secret-access-key SECRET" \
#   scripts/ab.sh cpu target/release/sluice target/release/sluice 3 -- send
#
# cpu:       alternating pairs; each run starts `BIN serve` on a fresh data dir (fsync on), warms up
#            2 s, runs `sluice-bench BENCH_ARGS --duration ${DUR:-10}` and prints msg/s and the
#            server's user and system CPU microseconds per request (/proc/PID/stat fields 14, 15).
# callgrind: each binary under `valgrind --tool=callgrind`; counters zeroed after a warm-up, dumped
#            after `--duration ${CG_DUR:-20}`; prints instructions per request in total and in the
#            connection task (parse, dispatch, engine, reply; the store's applier thread batches
#            differently at callgrind speed, so compare it apart). Instruction counts repeat to
#            well under 1% whatever else the machine does.
# Needs: sluice-bench (BENCH_BIN, default target/release/sluice-bench), curl; valgrind for callgrind.
# Output files: ${OUT:-target/ab} (each run's data dir is removed after it; its server.log stays).
set -euo pipefail
MODE=$1 A=$2 B=$3
shift 3
PAIRS=3
if [ "${1:-}" != "--" ]; then PAIRS=$1; shift; fi
[ "${1:-}" = "--" ] && shift
BENCH=${BENCH_BIN:-target/release/sluice-bench}
OUT=${OUT:-target/ab}
mkdir -p "$OUT"

start() { # BIN ENV PREFIX... -> sets PID, E, DIR
  local bin=$1 vars=$2 dir port
  shift 2
  dir=$(mktemp -d "$OUT/data.XXXX")
  DIR=$dir
  port=$((20000 + RANDOM % 20000))
  # shellcheck disable=SC2086 # $vars: NAME=value words
  env $vars "$@" "$bin" serve --port "$port" --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
  PID=$!
  E=http://127.0.0.1:$port
  for _ in $(seq 1 600); do curl -sf "$E/ready" >/dev/null && return 0; sleep 0.2; done
  echo "server $bin did not become ready" >&2
  return 1
}

sent() { grep -o 'total sent [0-9]*' "$1" | tail -1 | awk '{print $3}'; }

cpu_run() { # LABEL BIN ENV BENCH_ARGS
  start "$2" "$3"
  local extra=($4)
  "$BENCH" "${ARGS[@]}" "${extra[@]}" --endpoint "$E" --duration 2 --warmup 0 >/dev/null 2>&1
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PID/stat")
  "$BENCH" "${ARGS[@]}" "${extra[@]}" --endpoint "$E" --duration "${DUR:-10}" --warmup 0 >"$OUT/$1.bench" 2>&1
  read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$PID/stat")
  kill "$PID"; wait "$PID" 2>/dev/null || true
  rm -rf "$DIR/data" # a run leaves hundreds of MB; the disk is shared
  python3 - "$1" "$(sent "$OUT/$1.bench")" "$u1" "$s1" "$u2" "$s2" "${DUR:-10}" "$(getconf CLK_TCK)" <<'EOF'
import sys
label, msgs, u1, s1, u2, s2, dur, tck = sys.argv[1], *map(float, sys.argv[2:])
print(f"{label:7} msg/s {msgs / dur:9.0f}  user_us/msg {(u2 - u1) * 1e6 / tck / msgs:7.2f}  sys_us/msg {(s2 - s1) * 1e6 / tck / msgs:7.2f}")
EOF
}

callgrind_run() { # LABEL BIN ENV BENCH_ARGS
  start "$2" "$3" valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$OUT/cg.$1.out"
  local extra=($4)
  "$BENCH" "${ARGS[@]}" "${extra[@]}" --endpoint "$E" --duration 5 --warmup 1 >/dev/null 2>&1
  callgrind_control -z "$PID" >/dev/null
  "$BENCH" "${ARGS[@]}" "${extra[@]}" --endpoint "$E" --duration "${CG_DUR:-20}" --warmup 0 >"$OUT/$1.bench" 2>&1
  callgrind_control -d "$PID" >/dev/null
  sleep 1
  kill "$PID"; wait "$PID" 2>/dev/null || true
  rm -rf "$DIR/data"
  local dump
  dump=$(ls -t "$OUT/cg.$1.out".* | head -1)
  callgrind_annotate --inclusive=yes "$dump" >"$OUT/cg.$1.txt" 2>&1
  python3 - "$1" "$(sent "$OUT/$1.bench")" "$OUT/cg.$1.txt" <<'EOF'
import re, sys
label, msgs, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
total = conn = 0
for line in open(path):
    m = re.match(r"\s*([\d,]+) \(", line)
    if not m:
        continue
    v = int(m.group(1).replace(",", ""))
    if "PROGRAM TOTALS" in line:
        total = v
    if "sluice::server::with_tls" in line:
        conn = max(conn, v)
print(f"{label:7} messages {msgs}  Ir/msg total {total / msgs:9.0f}  in connection tasks {conn / msgs:9.0f}")
EOF
}

ARGS=("$@")
AE=${A_ENV:-} BE=${B_ENV:-} AX=${A_BENCH_ARGS:-} BX=${B_BENCH_ARGS:-}
case $MODE in
  cpu)
    for i in $(seq 1 "$PAIRS"); do
      if [ $((i % 2)) -eq 1 ]; then cpu_run "a$i" "$A" "$AE" "$AX"; cpu_run "b$i" "$B" "$BE" "$BX"
      else cpu_run "b$i" "$B" "$BE" "$BX"; cpu_run "a$i" "$A" "$AE" "$AX"; fi
    done ;;
  callgrind)
    callgrind_run a "$A" "$AE" "$AX"
    callgrind_run b "$B" "$BE" "$BX" ;;
  *) echo "usage: scripts/ab.sh cpu|callgrind BEFORE AFTER [PAIRS] -- BENCH_ARGS..." >&2; exit 2 ;;
esac
