"""Fixtures for the black-box SQS suite.

The server under test: env SQS_ENDPOINT (e.g. http://127.0.0.1:5000 for moto_server) if set; otherwise the sluice
binary (env SLUICE_BIN, default target/debug/sluice) is started once per session on port 0 with a temporary data dir.
"""

import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sluice_server import SluiceServer  # noqa: E402
from sqs_helpers import make_client  # noqa: E402


def pytest_report_header(config):
    ep = os.environ.get("SQS_ENDPOINT")
    return f"server under test: {ep if ep else 'sluice binary (' + os.environ.get('SLUICE_BIN', 'target/debug/sluice') + ')'}"


@pytest.fixture(scope="session")
def endpoint():
    ep = os.environ.get("SQS_ENDPOINT")
    if ep:
        yield ep.rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="sluice-pytest-") as data_dir:
        server = SluiceServer(data_dir, log_name="pytest-server")
        server.start()
        try:
            yield server.endpoint
        finally:
            code = server.stop()
            # A crash during the run would show up here rather than as a mysterious connection error.
            assert code == 0, f"sluice exited with {code} on SIGTERM; log: {server.log_path}"


@pytest.fixture(scope="session")
def sqs(endpoint):
    return make_client(endpoint)


@pytest.fixture(scope="session")
def run_id():
    return uuid.uuid4().hex[:8]


@pytest.fixture
def unique_name(request, run_id):
    """unique_name() -> a queue name unique to this test and run (letters, digits, '-' and '_' only)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")

    def make(suffix=""):
        return f"t{run_id}-{base}-{uuid.uuid4().hex[:6]}{suffix}"[:80]
    return make


@pytest.fixture
def make_queue(sqs, unique_name):
    """make_queue(**Attributes) -> queue URL; deleted after the test."""
    created = []

    def make(name=None, tags=None, **attributes):
        kwargs = {"QueueName": name or unique_name()}
        if attributes:
            kwargs["Attributes"] = {k: str(v) for k, v in attributes.items()}
        if tags:
            kwargs["tags"] = tags
        url = sqs.create_queue(**kwargs)["QueueUrl"]
        created.append(url)
        return url
    yield make
    for url in created:
        try:
            sqs.delete_queue(QueueUrl=url)
        except Exception:
            pass


@pytest.fixture
def queue(make_queue):
    return make_queue()


def pytest_collection_modifyitems(config, items):
    """SQS_KNOWN_DEVIATIONS=FILE marks the tests listed there (one node id per line, '#' comments) as expected
    failures: used to run the suite against moto, whose deviations from AWS are listed in moto_deviations.txt."""
    path = os.environ.get("SQS_KNOWN_DEVIATIONS")
    if not path:
        return
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        p = Path(__file__).resolve().parent / path
    known = {}
    for line in p.read_text().splitlines():
        node, _, why = line.partition("#")
        if node.strip():
            known[node.strip()] = why.strip() or "known deviation"
    for item in items:
        nodeid = item.nodeid.split("tests/python/", 1)[-1]
        if nodeid in known:
            item.add_marker(pytest.mark.xfail(reason=f"{p.name}: {known[nodeid]}", strict=False))
