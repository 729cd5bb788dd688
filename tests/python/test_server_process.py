"""The sluice process contract: ready line, env configuration, graceful shutdown, data surviving a restart.

These start their own sluice processes, so they are skipped when SQS_ENDPOINT points at another server.
"""

import os
import re
import signal
import time

import pytest

from sluice_server import READY_RE, SluiceServer
from sqs_helpers import expect_error, make_client

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")),
                                reason="SQS_ENDPOINT is set: not testing the sluice binary's process contract")


@pytest.fixture
def server(tmp_path):
    servers = []

    def start(**kwargs):
        s = SluiceServer(kwargs.pop("data_dir", tmp_path / "data"), log_name="process-test", **kwargs)
        s.start()
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.kill()


def test_ready_line_is_exact_and_alone(server):
    s = server()
    assert READY_RE.fullmatch(s.ready_line), repr(s.ready_line)
    port = int(s.endpoint.rsplit(":", 1)[1])
    assert port > 0
    sqs = make_client(s.endpoint)
    sqs.list_queues()
    assert s.stop() == 0
    assert s.extra_stdout.strip() == b"", f"stdout must hold only the ready line; also got {s.extra_stdout[:300]!r}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(server, sig):
    s = server()
    make_client(s.endpoint).list_queues()
    start = time.monotonic()
    code = s.stop(sig, timeout=10)
    assert code == 0, f"exit code {code} after {sig.name}"
    assert time.monotonic() - start < 10


def test_graceful_shutdown_during_long_poll(server):
    import threading
    s = server()
    sqs = make_client(s.endpoint)
    url = sqs.create_queue(QueueName="poll")["QueueUrl"]
    errors = []

    def poll():
        try:
            sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        except Exception as e:  # the poll may end with an empty answer or a closed connection
            errors.append(e)
    t = threading.Thread(target=poll, daemon=True)
    t.start()
    time.sleep(0.5)
    start = time.monotonic()
    assert s.stop(signal.SIGTERM, timeout=15) == 0
    assert time.monotonic() - start < 15, "a waiting long poll must not hold up shutdown for its full wait"
    t.join(timeout=5)


def test_data_survives_graceful_restart(server, tmp_path):
    data = tmp_path / "restart"
    s = server(data_dir=data)
    sqs = make_client(s.endpoint)
    url = sqs.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "40"},
                           tags={"k": "v"})["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="survives", MessageAttributes={
        "a": {"DataType": "String", "StringValue": "b"}})
    sqs.send_message(QueueUrl=url, MessageBody="deleted")
    got = []
    for _ in range(5):
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if len(got) >= 2:
            break
    assert sorted(m["Body"] for m in got) == ["deleted", "survives"]
    m = [m for m in got if m["Body"] == "deleted"]
    assert m, "did not receive the message to delete"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m[0]["ReceiptHandle"])
    created = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["CreatedTimestamp"])["Attributes"]
    assert s.stop() == 0

    s2 = server(data_dir=data)
    sqs2 = make_client(s2.endpoint)
    url2 = sqs2.get_queue_url(QueueName="durable")["QueueUrl"]
    assert url2 == f"{s2.endpoint}/000000000000/durable"
    a = sqs2.get_queue_attributes(QueueUrl=url2, AttributeNames=["All"])["Attributes"]
    assert a["VisibilityTimeout"] == "40"
    assert a["CreatedTimestamp"] == created["CreatedTimestamp"]
    assert sqs2.list_queue_tags(QueueUrl=url2).get("Tags") == {"k": "v"}
    # "survives" was received once with the 40 s visibility timeout and is still in flight; "deleted" is gone.
    assert a["ApproximateNumberOfMessages"] == "0" and a["ApproximateNumberOfMessagesNotVisible"] == "1", a
    assert sent["MessageId"]


def test_env_configuration(server, tmp_path):
    env = {"SLUICE_HOST": "127.0.0.1", "SLUICE_PORT": "0", "SLUICE_DATA_DIR": str(tmp_path / "envdata"),
           "SLUICE_REGION": "eu-west-1", "SLUICE_ACCOUNT_ID": "111122223333"}
    s = server(args=["serve"], env=env)
    sqs = make_client(s.endpoint)
    url = sqs.create_queue(QueueName="envq")["QueueUrl"]
    assert url == f"{s.endpoint}/111122223333/envq"
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn == "arn:aws:sqs:eu-west-1:111122223333:envq"
    assert (tmp_path / "envdata").is_dir() and any((tmp_path / "envdata").iterdir()), \
        "SLUICE_DATA_DIR should hold the data"
    with expect_error("QueueDoesNotExist"):
        sqs.get_queue_url(QueueName="not-there")
    assert s.stop() == 0


def test_default_account_and_region(server):
    s = server()
    sqs = make_client(s.endpoint)
    url = sqs.create_queue(QueueName="defaults")["QueueUrl"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/000000000000/defaults", url), url
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn == "arn:aws:sqs:us-east-1:000000000000:defaults"
