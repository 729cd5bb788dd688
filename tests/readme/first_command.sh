#!/usr/bin/env bash
# Runs the README's first command exactly as written (the first line of its first ```sh block) and checks that
# it starts a server that answers SQS requests, then stops it.
#
# Only the environment differs from a user's shell:
#   - SLUICE_PORT / SLUICE_DATA_DIR: a free port and a temporary data directory, so the check neither collides
#     with a server already on 9324 nor leaves ./sluice-data behind;
#   - CARGO_PROFILE_RELEASE_*: a cheap release profile (no optimisation, no debug info), because an optimised
#     build of the whole tree costs minutes that prove nothing more about the command itself.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

CMD=$(awk '/^```sh/{inblock=1; next} inblock{print; exit}' README.md | sed 's/[[:space:]]*#.*$//')
if [ -z "$CMD" ]; then
  echo "could not read the first command of README.md" >&2
  exit 1
fi
echo "README's first command: $CMD"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA=$(mktemp -d)
LOG=${ARTIFACTS:-$ROOT/tests/artifacts}/readme-first-command.log
mkdir -p "$(dirname "$LOG")"
export SLUICE_PORT=$PORT SLUICE_DATA_DIR=$DATA
export CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
  CARGO_PROFILE_RELEASE_INCREMENTAL=true

# setsid: the command (cargo) and the server it runs form one process group, stopped together.
setsid bash -c "$CMD" >"$LOG" 2>&1 &
PGID=$!
cleanup() { kill -TERM -- "-$PGID" 2>/dev/null || true; sleep 1; kill -KILL -- "-$PGID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT

# The build may take a few minutes on a cold tree.
for _ in $(seq 1 900); do
  if ! kill -0 "$PGID" 2>/dev/null; then
    echo "the command exited before the server answered; its output:" >&2
    tail -40 "$LOG" >&2
    exit 1
  fi
  # /ready, not /health: the port answers /health while the store is still being recovered (API 503 then).
  if curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1; then
    break
  fi
  sleep 1
done

# An SQS request over the Query protocol and one over JSON 1.0: the server answers the API, not only /health.
# (The answers are read whole before grep looks at them: `curl | grep -q` fails under pipefail when grep
# stops reading early.)
created=$(curl -fsS "http://127.0.0.1:$PORT/" -d 'Action=CreateQueue&QueueName=readme-check')
grep -q "<QueueUrl>http://127.0.0.1:$PORT/000000000000/readme-check</QueueUrl>" <<<"$created" || {
  echo "unexpected CreateQueue answer: $created" >&2
  exit 1
}
listed=$(curl -fsS "http://127.0.0.1:$PORT/" -H 'X-Amz-Target: AmazonSQS.ListQueues' \
  -H 'Content-Type: application/x-amz-json-1.0' -d '{}')
grep -q '/000000000000/readme-check"' <<<"$listed" || {
  echo "unexpected ListQueues answer: $listed" >&2
  exit 1
}
echo "ok: '$CMD' started a server that answers on port $PORT"
