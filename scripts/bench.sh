#!/usr/bin/env bash
# The side-by-side benchmark: sluice (release, fsync on, own data dir), the ceiling server
# (`sluice-bench ceiling`), moto's server and RabbitMQ (pipeline only), several runs, medians,
# a table. Everything talks to 127.0.0.1 only.
#
#   scripts/bench.sh                       # 3 runs, 10 s per scenario, backlog 1M (standard + FIFO)
#   RUNS=5 DUR=20 BACKLOGS="1000000 10000000" scripts/bench.sh
#
# Knobs (environment): RUNS (3), DUR seconds per scenario (10), MOTO_DUR (5), MOTO_FIFO_DUR
# (20, moto's fifo run), CONNS (32),
# BODY (200), BACKLOGS (space-separated sizes, "" = skip), FIFO_BACKLOGS (sizes for the FIFO
# backlog, default BACKLOGS, "" = skip), FIFO_GROUPS (message groups of the FIFO backlog, 10000),
# BASELINE (messages in the backlog scenario's "nearly empty" queue, 100000),
# WAIT (WaitTimeSeconds of the pipeline/fifo/many-queues consumers, 1), SKIP_BUILD=1, SKIP_MOTO=1,
# SKIP_RABBIT=1, SLUICE_BIN / BENCH_BIN (use prebuilt binaries), AMQP_URL
# (amqp://guest:guest@127.0.0.1:5672/%2f), OUT (results dir).
# Results: $OUT/results.jsonl (one JSON line per scenario run, with run number and load average),
# $OUT/table.md (medians). Needs python3 for the table; moto_server for moto.
# TABLE_ONLY=path/to/results.jsonl reprints the table of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DUR=${DUR:-10}
MOTO_DUR=${MOTO_DUR:-5}
MOTO_FIFO_DUR=${MOTO_FIFO_DUR:-20}
CONNS=${CONNS:-32}
BODY=${BODY:-200}
BACKLOGS=${BACKLOGS-1000000}
FIFO_BACKLOGS=${FIFO_BACKLOGS-$BACKLOGS}
FIFO_GROUPS=${FIFO_GROUPS:-10000}
BASELINE=${BASELINE:-100000}
WAIT=${WAIT:-1}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
print_table() { # results.jsonl
python3 - "$1" <<'EOF'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return st.median(xs) if xs else None
def f(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
groups = {}
for r in rows:
    if r.get("scenario") in ("backlog", "restart", "disk"):
        continue
    groups.setdefault((r["scenario"], r["target"]), []).append(r)
order = ["send", "send-batch10", "receive", "pipeline", "fifo", "many-queues"]
torder = ["ceiling", "sluice", "sluice@50k", "moto", "rabbitmq"]
key = lambda k: (order.index(k[0]) if k[0] in order else 99, torder.index(k[1]) if k[1] in torder else 99)
M = {}
print("| scenario | target | runs | msg/s | req/s | p50 ms | p99 ms | p99.9 ms | load1 before |")
print("|---|---|---|---|---|---|---|---|---|")
for k in sorted(groups, key=key):
    g = groups[k]
    if all("skipped" in r for r in g):
        print(f"| {k[0]} | {k[1]} | {len(g)} | skipped: {g[0]['skipped'][:60]} | | | | | |")
        continue
    m = {c: med([r.get(c) for r in g]) for c in ("msgs_per_s", "requests_per_s", "p50_ms", "p99_ms", "p999_ms")}
    M[k] = m
    loads = [r.get("load1_before") for r in g]
    builds = max(r.get("rustc_running", 0) for r in g)
    print(f"| {k[0]} | {k[1]} | {len(g)} | {f(m['msgs_per_s'])} | {f(m['requests_per_s'])} | {f(m['p50_ms'],2)} | {f(m['p99_ms'],2)} | {f(m['p999_ms'],2)} | {min(loads)}-{max(loads)}{' (build running)' if builds else ''} |")
print()
def qkind(r):  # "standard" or "FIFO (N groups)"; results without "fifo" are standard
    return f"FIFO ({r['groups']:,} groups)" if r.get("fifo") and r.get("groups") else ("FIFO" if r.get("fifo") else "standard")
def bkey(r):
    return (bool(r.get("fifo")), r.get("backlog") or 0)
bl = sorted([r for r in rows if r.get("scenario") == "backlog"], key=bkey)
if bl:
    print("| backlog | queue | fill msg/s | receive msg/s with backlog | nearly empty msg/s | ratio | RSS bytes/msg |")
    print("|---|---|---|---|---|---|---|")
    for r in bl:
        if "skipped" in r:
            print(f"| {r['backlog']:,} | {qkind(r)} | skipped: {r['skipped'][:60]} | | | | |")
            continue
        print(f"| {r['backlog']:,} | {qkind(r)} | {f(r.get('fill_msgs_per_s'))} | {f(r.get('msgs_per_s'))} | {f(r.get('baseline_msgs_per_s'))} ({r.get('baseline', 100000):,} queued) | {r.get('ratio_to_baseline')} | {r.get('rss_bytes_per_msg')} |")
    print()
rs = sorted([r for r in rows if r.get("scenario") == "restart"], key=bkey)
if rs:
    print("| restart | queue | after | queued when serving | serving again after (s) |")
    print("|---|---|---|---|---|")
    for r in rs:
        print(f"| backlog {r.get('backlog'):,} | {qkind(r)} | SIG{r.get('signal')} | {r.get('queued')} | {r.get('wall_s')} |")
    print()
def get(s, t, c):
    return (M.get((s, t)) or {}).get(c)
print("| goal | measured | met |")
print("|---|---|---|")
def goal(name, val, ok, fmt):
    print(f"| {name} | {fmt if val is not None else 'not measured'} | {'-' if val is None else ('yes' if ok else '**NO**')} |")
a, b = get("send", "sluice", "requests_per_s"), get("send", "ceiling", "requests_per_s")
v = a / b if a and b else None
goal("SendMessage batch 1 >= 60% of ceiling req/s", v, v and v >= 0.6, f"{v:.1%} ({f(a)} vs {f(b)} req/s)" if v else "")
v = get("send-batch10", "sluice", "msgs_per_s")
goal("SendMessageBatch 10 >= 150,000 msg/s", v, v and v >= 150000, f"{f(v)} msg/s" if v else "")
v, p = get("pipeline", "sluice", "msgs_per_s"), get("pipeline", "sluice", "p99_ms")
goal("pipeline >= 50,000 msg/s with p99 < 20 ms", v, v and p and v >= 50000 and p < 20, f"{f(v)} msg/s, p99 {f(p,2)} ms" if v else "")
v, p = get("pipeline", "sluice@50k", "msgs_per_s"), get("pipeline", "sluice@50k", "p99_ms")
goal("pipeline offered 50,000 msg/s: sustained, p99 < 20 ms", v, v and p and v >= 49000 and p < 20, f"{f(v)} msg/s, p99 {f(p,2)} ms" if v else "")
for s in order:
    a, b = get(s, "sluice", "msgs_per_s"), get(s, "moto", "msgs_per_s")
    v = a / b if a and b else None
    goal(f"{s}: >= 100x moto", v, v and v >= 100, f"{v:,.0f}x ({f(a)} vs {f(b)} msg/s)" if v else "")
for r in bl:
    q = " FIFO" if r.get("fifo") else ""
    v = r.get("ratio_to_baseline")
    goal(f"backlog{q} {r['backlog']:,}: receive >= 80% of nearly-empty", v, v and v >= 0.8, f"{v:.0%}" if v else "")
    v = r.get("rss_bytes_per_msg")
    # FIFO: includes the de-duplication ids, remembered for 5 minutes after the send.
    goal(f"backlog{q} {r['backlog']:,}: RSS <= 200 B/queued msg{' (incl. dedup ids)' if q else ''}", v, v is not None and v <= 200, f"{v} B/msg" if v is not None else "")
for r in rs:
    q = " FIFO" if r.get("fifo") else ""
    v = r.get("wall_s")
    goal(f"restart{q} (SIG{r.get('signal')}) with {r.get('queued')} queued: serving <= 15 s", v, v is not None and v <= 15, f"{v} s" if v is not None else "")
EOF
}

if [[ -n "${TABLE_ONLY:-}" ]]; then
  print_table "$TABLE_ONLY"
  exit 0
fi

OUT=${OUT:-$ROOT/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

if [[ -z "${SKIP_BUILD:-}" ]]; then
  features=()
  [[ -z "${SKIP_RABBIT:-}" ]] && features=(--features sluice-bench/rabbitmq)
  nice -n 10 cargo build --release -p sluice -p sluice-bench "${features[@]}"
fi
SLUICE_BIN=${SLUICE_BIN:-$ROOT/target/release/sluice}
BENCH_BIN=${BENCH_BIN:-$ROOT/target/release/sluice-bench}
# Private copies, so that a parallel build cannot swap the binaries mid-run.
cp "$SLUICE_BIN" "$OUT/sluice"
cp "$BENCH_BIN" "$OUT/sluice-bench"
SLUICE_BIN=$OUT/sluice
BENCH=$OUT/sluice-bench

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel: $(uname -sr)"
  echo "memory: $(grep MemTotal /proc/meminfo | awk '{print $2/1024/1024 " GiB"}')"
} | tee "$OUT/machine.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_line FILE -> prints the port from "... listening on http://127.0.0.1:PORT"
wait_line() {
  local f=$1 i
  for i in $(seq 1 600); do
    if grep -q 'listening on http://' "$f" 2>/dev/null; then
      grep -m1 -o 'listening on http://[0-9.]*:[0-9]*' "$f" | grep -o '[0-9]*$'
      return 0
    fi
    sleep 0.05
  done
  echo "server did not start; log: $f" >&2
  return 1
}

wait_tcp() { # port
  local i
  for i in $(seq 1 300); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

SERVER_PID=
SERVER_PORT=
start_sluice() { # datadir [port]
  local log=$OUT/sluice-$(date +%s%N).log
  SLUICE_LOG=warn "$SLUICE_BIN" serve --port "${2:-0}" --data-dir "$1" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_PORT=$(wait_line "$log")
}
start_ceiling() {
  local log=$OUT/ceiling.log
  "$BENCH" ceiling --port 0 >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_PORT=$(wait_line "$log")
}
start_moto() {
  SERVER_PORT=$(free_port)
  moto_server -p "$SERVER_PORT" >"$OUT/moto.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_tcp "$SERVER_PORT"
}
stop_server() { # signal
  kill -"${1:-TERM}" "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# bench RUN SCENARIO ARGS... : runs one scenario, appends its result line (+ run, load average).
bench() {
  local run=$1 load line builds
  shift
  load=$(cut -d' ' -f1 /proc/loadavg)
  # A parallel build (rustc) competing for the 2 cores is recorded with each result.
  builds=$(pgrep -c -x rustc || true)
  echo "== run $run: $* (load $load, rustc processes $builds)" >&2
  if line=$("$BENCH" "$@" 2>>"$OUT/progress.log" | tail -1) && [[ $line == "{"* ]]; then
    echo "${line%\}},\"run\":$run,\"load1_before\":$load,\"rustc_running\":${builds:-0}}" >>"$RESULTS"
    echo "   $line" >&2
  else
    echo "   FAILED (see $OUT/progress.log)" >&2
  fi
}

for run in $(seq 1 "$RUNS"); do
  # The ceiling.
  start_ceiling
  E=http://127.0.0.1:$SERVER_PORT
  bench "$run" send --endpoint "$E" --target ceiling --connections "$CONNS" --duration "$DUR" --body-size "$BODY"
  bench "$run" send --endpoint "$E" --target ceiling --connections "$CONNS" --duration "$DUR" --body-size "$BODY" --batch 10
  stop_server

  # sluice, fresh data directory each run.
  rm -rf "$OUT/data"
  start_sluice "$OUT/data"
  E=http://127.0.0.1:$SERVER_PORT
  common=(--endpoint "$E" --target sluice --connections "$CONNS" --duration "$DUR" --body-size "$BODY")
  bench "$run" send "${common[@]}"
  bench "$run" send "${common[@]}" --batch 10
  bench "$run" receive "${common[@]}" --prefill 300000
  bench "$run" pipeline "${common[@]}" --batch 10 --wait "$WAIT"
  bench "$run" pipeline --endpoint "$E" --target sluice@50k --connections "$CONNS" --duration "$DUR" --body-size "$BODY" --batch 10 --rate 50000 --wait "$WAIT"
  bench "$run" fifo "${common[@]}" --batch 10 --wait "$WAIT"
  bench "$run" many-queues "${common[@]}" --batch 10 --queues 1000 --wait "$WAIT"
  stop_server
  rm -rf "$OUT/data"

  # moto (slow: shorter runs, small pre-fill).
  if [[ -z "${SKIP_MOTO:-}" ]] && command -v moto_server >/dev/null; then
    start_moto
    E=http://127.0.0.1:$SERVER_PORT
    common=(--endpoint "$E" --target moto --connections "$CONNS" --duration "$MOTO_DUR" --body-size "$BODY")
    bench "$run" send "${common[@]}"
    bench "$run" send "${common[@]}" --batch 10
    # moto slows down as a queue grows (3,000 messages took 90 s to send and a receive+delete
    # cycle then took > 5 s), so its receive run uses 400 messages and 10 s.
    bench "$run" receive --endpoint "$E" --target moto --connections "$CONNS" --duration 10 --body-size "$BODY" --prefill 400
    bench "$run" pipeline "${common[@]}" --batch 10 --wait "$WAIT"
    # moto's FIFO send->receive latency is ~10 s (p50), so in MOTO_DUR it mostly completed no
    # message at all and the ratio could not be computed: its fifo run gets MOTO_FIFO_DUR (20 s).
    bench "$run" fifo --endpoint "$E" --target moto --connections "$CONNS" --duration "$MOTO_FIFO_DUR" --body-size "$BODY" --batch 10 --wait "$WAIT"
    bench "$run" many-queues "${common[@]}" --batch 10 --queues 1000 --wait "$WAIT"
    stop_server
  fi

  # RabbitMQ: pipeline with persistent messages and publisher confirms.
  if [[ -z "${SKIP_RABBIT:-}" ]] && (echo >/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    bench "$run" pipeline --endpoint "$AMQP_URL" --target rabbitmq --connections "$CONNS" --duration "$DUR" --body-size "$BODY" --batch 10
  fi
done

# Backlog (once per size, standard then FIFO): receive rate with N queued vs a nearly empty queue,
# RSS per queued message, then restart times (SIGTERM, then SIGKILL) with the backlog still queued.
run_backlog() { # size fifo(0|1)
  local n=$1 fifo=$2 name extra=() tag="" sig t0 t1 line port
  name=backlog-$n
  if [[ $fifo == 1 ]]; then
    name=backlog-$n.fifo
    extra=(--fifo --groups "$FIFO_GROUPS")
    tag=",\"fifo\":true,\"groups\":$FIFO_GROUPS"
  fi
  rm -rf "$OUT/data"
  start_sluice "$OUT/data"
  port=$SERVER_PORT
  E=http://127.0.0.1:$port
  bench 1 backlog --endpoint "$E" --target sluice --connections "$CONNS" --duration "$DUR" --body-size "$BODY" \
    --backlog "$n" --baseline "$BASELINE" --server-pid "$SERVER_PID" --keep --queue-name "$name" "${extra[@]}"
  du -sb "$OUT/data" | awk -v n="$n" -v tag="$tag" '{print "{\"scenario\":\"disk\",\"target\":\"sluice\",\"backlog\":" n ",\"data_dir_bytes\":" $1 tag "}"}' >>"$RESULTS"
  for sig in TERM KILL; do
    stop_server "$sig"
    t0=$(date +%s%N)
    start_sluice "$OUT/data" "$port"
    if line=$("$BENCH" probe --endpoint "$E" --queue-name "$name" --timeout 300 2>>"$OUT/progress.log"); then
      t1=$(date +%s%N)
      echo "${line%\}},\"backlog\":$n,\"signal\":\"$sig\",\"wall_s\":$(( (t1 - t0) / 1000000 ))e-3$tag}" >>"$RESULTS"
      echo "   restart after SIG$sig with backlog $n${tag:+ (FIFO)}: $line" >&2
    fi
  done
  stop_server
  rm -rf "$OUT/data"
}
for n in $BACKLOGS; do run_backlog "$n" 0; done
for n in $FIFO_BACKLOGS; do run_backlog "$n" 1; done

print_table "$RESULTS" | tee "$OUT/table.md"
echo "results: $OUT" >&2
