#!/usr/bin/env bash
# Demo of the motivating use case: operation records buffered through sluice into PostgreSQL.
#   A burst of RECORDS records (+DUP_PERCENT% duplicates) is produced as fast as possible while
#   `sluice drain` writes them at most RATE records/s; the drain is kill -9'ed at 40% and
#   restarted (KILL=0 to skip). At the end: producer rate, drain rate, max rows committed in
#   any 1-second window, and the final counts (exactly RECORDS rows).
# Env: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), RECORDS (100000),
#      RATE (5000), DUP_PERCENT (5), KILL (1), SLUICE_BIN (default target/debug/sluice).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
RECORDS=${RECORDS:-100000}
RATE=${RATE:-5000}
DUP_PERCENT=${DUP_PERCENT:-5}
KILL=${KILL:-1}
TABLE=demo_operation_records
QUEUE=operation-records

echo "== building (sluice, burst_producer example)"
nice -n 10 cargo build -q -p sluice -p sluice-client --example burst_producer
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/sluice}
PRODUCER=${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/burst_producer

psql "$DATABASE_URL" -qc "DROP TABLE IF EXISTS $TABLE" >/dev/null

WORK=$(mktemp -d)
SERVER_PID=""; DRAIN_PID=""
cleanup() {
  [ -n "$DRAIN_PID" ] && kill "$DRAIN_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting sluice (data in $WORK/data)"
mkfifo "$WORK/ready"
"$SLUICE_BIN" serve --host 127.0.0.1 --port 0 --data-dir "$WORK/data" >"$WORK/ready" 2>"$WORK/server.log" &
SERVER_PID=$!
read -r READY <"$WORK/ready"
ENDPOINT=${READY#sluice listening on }
# keep draining the server's stdout
cat "$WORK/ready" >/dev/null &
echo "   $ENDPOINT"

"$PRODUCER" "$ENDPOINT" "$QUEUE" 0 >/dev/null   # create the queue

start_drain() {
  "$SLUICE_BIN" drain --endpoint "$ENDPOINT" --queue "$QUEUE" --postgres "$DATABASE_URL" --table "$TABLE" \
    --rate "$RATE" --visibility-timeout 5 --wait-time 1 --idle-exit 3 "$@" \
    2> >(sed -u 's/^/   [drain] /' >&2) &
  DRAIN_PID=$!
}
count() { psql "$DATABASE_URL" -tAc "SELECT count(*) FROM $TABLE" 2>/dev/null || echo 0; }

echo "== draining into $TABLE at most $RATE records/s; producing $RECORDS records + ${DUP_PERCENT}% duplicates"
T0=$(date +%s.%N)
start_drain
"$PRODUCER" "$ENDPOINT" "$QUEUE" "$RECORDS" "$DUP_PERCENT" | sed 's/^/== /' &
PRODUCER_PID=$!

if [ "$KILL" = 1 ]; then
  while [ "$(count)" -lt $((RECORDS * 2 / 5)) ]; do sleep 0.2; done
  kill -9 "$DRAIN_PID"; wait "$DRAIN_PID" 2>/dev/null || true
  echo "== kill -9 of the drain at $(count) rows; restarting it"
  start_drain
fi
wait "$PRODUCER_PID"
wait "$DRAIN_PID" || true
DRAIN_PID=""
T1=$(date +%s.%N)

echo "== results"
psql "$DATABASE_URL" -qAt -F ' ' <<SQL | awk -v t="$(echo "$T1 - $T0" | bc)" -v cap="$RATE" '{
  printf "   rows: %s (distinct ids %s, expected '"$RECORDS"')\n   drain wall time: %.1fs (%.0f rows/s incl. the idle-exit wait)\n   max rows committed in any 1-second window: %s (cap %s)\n", $1, $2, t, $1/t, $3, cap }'
WITH b AS (SELECT inserted_at AS t, count(*) AS n FROM $TABLE GROUP BY inserted_at),
     w AS (SELECT sum(n) OVER (ORDER BY t RANGE BETWEEN CURRENT ROW AND interval '999999 microseconds' FOLLOWING) AS s FROM b)
SELECT (SELECT count(*) FROM $TABLE), (SELECT count(DISTINCT id) FROM $TABLE), (SELECT max(s) FROM w);
SQL
