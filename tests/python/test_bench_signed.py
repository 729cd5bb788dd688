"""sluice-bench against a sluice that verifies SigV4 (issue 23's performance check runs the bench with auth on).

The bench signs every request itself (crates/sluice-bench/src/sign.rs) when given a key; the server started here
with SLUICE_ACCESS_KEY_ID / SLUICE_SECRET_ACCESS_KEY refuses anything unsigned, so a bench run without errors means
every request of the scenario (CreateQueue, SendMessage(Batch), ReceiveMessage, DeleteMessageBatch, DeleteQueue)
was signed as the server's verifier expects. The binary: env SLUICE_BENCH_BIN, default sluice-bench next to the
sluice binary under test (`cargo build --workspace` builds both).
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from sluice_server import SluiceServer, sluice_bin

KEY, SECRET = "AKSLUICEBENCHKEY0001", "bench-secret-0123456789abcdefghijklmnopq"

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="starts its own sluice with keys")


def bench_bin():
    path = os.environ.get("SLUICE_BENCH_BIN")
    return Path(path) if path else sluice_bin().parent / "sluice-bench"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    s = SluiceServer(tmp_path_factory.mktemp("bench-signed") / "data", log_name="bench-signed-server",
                     env={"SLUICE_ACCESS_KEY_ID": KEY, "SLUICE_SECRET_ACCESS_KEY": SECRET})
    s.start()
    yield s.endpoint
    assert s.stop() == 0


def run_bench(endpoint, *args, env=None):
    binary = bench_bin()
    assert binary.exists(), f"sluice-bench not found at {binary} (cargo build -p sluice-bench, or SLUICE_BENCH_BIN)"
    cmd = [str(binary), *args, "--endpoint", endpoint, "--duration", "1", "--warmup", "0", "--connections", "4"]
    # No AWS_* credentials from the caller's environment: each test says whether the bench signs.
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**base, **(env or {})})


@pytest.mark.parametrize("scenario", [["send"], ["send", "--batch", "10"], ["pipeline", "--batch", "10"]])
def test_signed_bench_runs_without_errors(endpoint, scenario):
    r = run_bench(endpoint, *scenario, "--access-key-id", KEY, "--secret-access-key", SECRET)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0, r.stderr
    assert result["msgs_per_s"] > 0, r.stdout


def test_keys_from_the_environment_sign_too(endpoint):
    r = run_bench(endpoint, "send", env={"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["errors"] == 0, r.stderr


@pytest.mark.parametrize("creds", [[], ["--access-key-id", KEY, "--secret-access-key", SECRET + "x"],
                                   ["--access-key-id", KEY, "--secret-access-key", SECRET, "--region", "eu-west-1"]])
def test_unsigned_or_wrongly_signed_bench_is_refused(endpoint, creds):
    # The server really verifies: its first call (CreateQueue) is refused and the bench says why.
    r = run_bench(endpoint, "send", *creds)
    assert r.returncode != 0, r.stdout
    assert "HTTP 403" in r.stderr or "HTTP 400" in r.stderr, r.stderr
