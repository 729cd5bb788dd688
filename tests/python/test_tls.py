"""sluice serve --tls-cert/--tls-key with clients nobody here wrote: boto3 (verify=ca.pem) and the AWS CLI
(--ca-bundle ca.pem), against a CA and a server certificate made by the `openssl` command at test time.

Skipped when SQS_ENDPOINT points at another server, or when there is no `openssl` command.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from sluice_server import SluiceServer
from tls_certs import make_ca, make_server_cert

pytestmark = [
    pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="SQS_ENDPOINT is set: not starting sluice"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command to make test certificates"),
]


@pytest.fixture
def tls_server(tmp_path):
    make_ca(tmp_path)
    make_server_cert(tmp_path)
    s = SluiceServer(tmp_path / "data", log_name="tls-test",
                     extra_args=["--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key")])
    s.start()
    yield s, tmp_path / "ca.pem"
    assert s.stop() == 0


def test_boto3_over_https_with_a_private_ca(tls_server):
    server, ca = tls_server
    assert server.endpoint.startswith("https://127.0.0.1:")
    sqs = boto3.client("sqs", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test", verify=str(ca), config=Config(retries={"total_max_attempts": 1}))
    url = sqs.create_queue(QueueName="tls-orders")["QueueUrl"]
    assert url == f"{server.endpoint}/000000000000/tls-orders"
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"op {i}"} for i in range(10)])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert sorted(m["Body"] for m in got) == sorted(f"op {i}" for i in range(10))
    for m in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # Without the CA, the certificate is not trusted: the client refuses, as it should.
    untrusting = boto3.client("sqs", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="test",
                              aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(Exception, match="(?i)certificate|SSL"):
        untrusting.list_queues()


def test_aws_cli_over_https_with_ca_bundle(tls_server):
    server, ca = tls_server
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip(f"no AWS CLI next to {sys.executable}")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    base = [str(aws), "--endpoint-url", server.endpoint, "--ca-bundle", str(ca), "--output", "text", "sqs"]
    out = subprocess.run(base + ["create-queue", "--queue-name", "tls-cli"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out == f"{server.endpoint}/000000000000/tls-cli"
    subprocess.run(base + ["send-message", "--queue-url", out, "--message-body", "hello over tls"], env=env,
                   check=True, capture_output=True)
    body = subprocess.run(base + ["receive-message", "--queue-url", out, "--wait-time-seconds", "2",
                                  "--query", "Messages[0].Body"], env=env, check=True, capture_output=True,
                          text=True).stdout.strip()
    assert body == "hello over tls"
