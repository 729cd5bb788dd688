#!/usr/bin/env bash
# Runs the seed CLI walk-through (tests/cli/seed_cli_demo.sh, an exact copy of shared/scripts/seed_cli_demo.sh)
# against sluice with two AWS CLIs nobody here wrote:
#   (a) the pip awscli from the venv            -> AWS JSON 1.0 protocol
#   (b) a Query-protocol CLI: Debian's awscli 2.9 (/usr/bin/aws, called explicitly, never the pyenv shim), or, when
#       that is missing, awscli 1.29.80 in its own venv (its botocore 1.31.80 is the last whose SQS model is
#       "protocol": "query"; botocore 1.31.81 switched SQS to JSON).
# Each CLI's wire protocol is checked from its --debug output before the demo runs.
#
# Server: SQS_ENDPOINT if set, else the sluice binary (SLUICE_BIN, default target/debug/sluice) on port 0 with a
# temporary data dir. Env VENV (default .venv) is the Python venv with awscli.
# Exit status: 0 if every client passed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
QUERY_VENV=${QUERY_VENV:-$VENV/awscli-query}
QUERY_AWSCLI_VERSION=1.29.80
DEBIAN_AWS=${DEBIAN_AWS:-/usr/bin/aws}  # overridable only to exercise the fallback
ARTIFACTS=$ROOT/tests/artifacts
mkdir -p "$ARTIFACTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cli.XXXXXX")
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

log() { echo "[cli] $*"; }

# --- the server ------------------------------------------------------------------------------------------------
if [ -n "${SQS_ENDPOINT:-}" ]; then
  ENDPOINT=${SQS_ENDPOINT%/}
  log "using SQS_ENDPOINT=$ENDPOINT"
else
  BIN=${SLUICE_BIN:-target/debug/sluice}
  case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
  if [ ! -x "$BIN" ]; then
    log "FAIL: sluice binary not found at $BIN (cargo build, or set SLUICE_BIN / SQS_ENDPOINT)"
    echo "cli: 0 passed, 1 failed"
    exit 1
  fi
  "$BIN" serve --host 127.0.0.1 --port 0 --data-dir "$TMP/data" >"$TMP/stdout" 2>"$ARTIFACTS/cli-server.stderr.log" &
  SERVER_PID=$!
  ENDPOINT=""
  for _ in $(seq 1 300); do
    line=$(head -n 1 "$TMP/stdout" 2>/dev/null)
    if [[ "$line" =~ ^sluice\ listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
      ENDPOINT=${BASH_REMATCH[1]}
      break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ENDPOINT" ]; then
    log "FAIL: sluice did not print its ready line (stdout: $(head -c 200 "$TMP/stdout"); log: $ARTIFACTS/cli-server.stderr.log)"
    tail -n 20 "$ARTIFACTS/cli-server.stderr.log" 2>/dev/null
    echo "cli: 0 passed, 1 failed"
    exit 1
  fi
  log "sluice at $ENDPOINT (pid $SERVER_PID)"
fi

if ! command -v jq >/dev/null 2>&1; then
  log "FAIL: the demo needs jq (apt-get install jq)"
  echo "cli: 0 passed, 1 failed"
  exit 1
fi

# A clean AWS CLI environment: no user config or profile can change the output format or region.
: >"$TMP/aws-config"
export AWS_CONFIG_FILE=$TMP/aws-config AWS_SHARED_CREDENTIALS_FILE=$TMP/aws-config
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_OUTPUT=json AWS_PAGER=""
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SQS

# protocol_of AWS_BINARY -> prints json, query or unknown (from the request botocore logs with --debug)
protocol_of() {
  local out
  out=$("$1" sqs list-queues --region us-east-1 --endpoint-url "$ENDPOINT" --debug 2>&1 >/dev/null)
  if grep -q "'X-Amz-Target': 'AmazonSQS.ListQueues'" <<<"$out"; then echo json
  elif grep -q "'Action': 'ListQueues'" <<<"$out"; then echo query
  else echo unknown; fi
}

# --- pick the clients --------------------------------------------------------------------------------------------
CLIENT_NAMES=()
CLIENT_BINS=()
CLIENT_PROTOS=()
FAILED=0
PASSED=0
SUMMARY=()

if [ -x "$VENV/bin/aws" ]; then
  CLIENT_NAMES+=("pip awscli $("$VENV/bin/aws" --version 2>&1 | cut -d' ' -f1)")
  CLIENT_BINS+=("$VENV/bin/aws")
  CLIENT_PROTOS+=(json)
else
  log "FAIL: no pip awscli at $VENV/bin/aws (scripts/test.sh installs it)"
  SUMMARY+=("FAIL  pip awscli (JSON): not installed")
  FAILED=$((FAILED + 1))
fi

QUERY_BIN=""
if [ -x "$DEBIAN_AWS" ]; then
  proto=$(protocol_of "$DEBIAN_AWS")
  if [ "$proto" = query ]; then
    QUERY_BIN=$DEBIAN_AWS
    QUERY_NAME="Debian awscli $("$DEBIAN_AWS" --version 2>&1 | cut -d' ' -f1)"
  else
    log "$DEBIAN_AWS speaks '$proto' to SQS, not query: falling back to awscli $QUERY_AWSCLI_VERSION in a venv"
  fi
else
  log "no $DEBIAN_AWS (Debian awscli): falling back to awscli $QUERY_AWSCLI_VERSION in a venv"
fi
if [ -z "$QUERY_BIN" ]; then
  if [ ! -x "$QUERY_VENV/bin/aws" ]; then
    log "installing awscli==$QUERY_AWSCLI_VERSION into $QUERY_VENV"
    { python3 -m venv "$QUERY_VENV" && "$QUERY_VENV/bin/pip" install -q "awscli==$QUERY_AWSCLI_VERSION"; } \
      >"$ARTIFACTS/cli-query-venv.log" 2>&1 || log "could not install it (see $ARTIFACTS/cli-query-venv.log)"
  fi
  if [ -x "$QUERY_VENV/bin/aws" ]; then
    QUERY_BIN=$QUERY_VENV/bin/aws
    QUERY_NAME="pip awscli $("$QUERY_VENV/bin/aws" --version 2>&1 | cut -d' ' -f1) (venv)"
  fi
fi
if [ -n "$QUERY_BIN" ]; then
  CLIENT_NAMES+=("$QUERY_NAME")
  CLIENT_BINS+=("$QUERY_BIN")
  CLIENT_PROTOS+=(query)
else
  log "FAIL: no Query-protocol CLI could be found or installed"
  SUMMARY+=("FAIL  Query-protocol CLI: none available")
  FAILED=$((FAILED + 1))
fi

# --- run the demo with each ----------------------------------------------------------------------------------------
for i in "${!CLIENT_BINS[@]}"; do
  name=${CLIENT_NAMES[$i]} bin=${CLIENT_BINS[$i]} want=${CLIENT_PROTOS[$i]}
  log "=== $name ($bin), expecting the $want protocol"
  got=$(protocol_of "$bin")
  if [ "$got" != "$want" ]; then
    log "FAIL: $name spoke '$got', expected '$want'"
    SUMMARY+=("FAIL  $name: protocol $got, expected $want")
    FAILED=$((FAILED + 1))
    continue
  fi
  shim=$TMP/shim-$i
  mkdir -p "$shim"
  ln -sf "$bin" "$shim/aws"  # the demo calls plain `aws`: this one, not whatever PATH (or pyenv) would pick
  if PATH="$shim:$PATH" bash "$ROOT/tests/cli/seed_cli_demo.sh" "$ENDPOINT" >"$TMP/demo-$i.log" 2>&1; then
    sed 's/^/    /' "$TMP/demo-$i.log"
    log "ok: $name"
    SUMMARY+=("ok    $name [$want protocol]")
    PASSED=$((PASSED + 1))
  else
    sed 's/^/    /' "$TMP/demo-$i.log"
    log "FAIL: $name"
    SUMMARY+=("FAIL  $name [$want protocol]")
    FAILED=$((FAILED + 1))
  fi
done

log "clients that ran:"
for s in "${SUMMARY[@]}"; do echo "    $s"; done
echo "cli: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
