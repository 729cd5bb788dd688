"""Issue 23, "always, in every mode": no web page may drive sluice, SNS may not be turned against the
local network, and the data directory is private. Each of these probes succeeded on main before the
guard (crates/sluice/src/guard.rs, crates/sluice-sns/src/delivery/endpoints.rs,
crates/sluice-store/src/files.rs):

- a foreign `Origin` (or `Origin: null`, or `Sec-Fetch-Site: cross-site`) is refused;
- a `Host` that is not one of the server's names is refused (DNS rebinding), the dashboard's /api/ included;
- an unsigned GET never changes state (read-only actions and presigned URLs still work);
- a cross-origin HTML form (urlencoded, text/plain, multipart) cannot drive the API;
- SNS http(s) subscriptions to loopback / private / link-local addresses need the operator's leave;
- the data directory is 0700 and its files 0600; wider modes found at start are logged.

Refusals are 403 in the protocol the request speaks: SQS `AccessDenied` (JSON `__type`
com.amazon.coral.service#AccessDeniedException, `x-amzn-query-error: AccessDenied;Sender`), SNS
`AuthorizationError` (its modeled AuthorizationErrorException: code AuthorizationError, status 403,
botocore's sns service-2.json).
"""

import json
import os
import socket
import stat
import uuid
from urllib.parse import quote, urlsplit

import boto3
import pytest
import requests
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sluice_server import SluiceServer
from sqs_helpers import FORM_CT, JSON_CT, REGION, make_client

own_process = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")),
                                 reason="SQS_ENDPOINT is set: these start their own sluice processes")
EVIL = "http://evil.example"


def q(s):
    return quote(s, safe="")


def assert_sqs_denied(resp):
    assert resp.status_code == 403, f"HTTP {resp.status_code}: {resp.text[:400]}"
    if resp.headers.get("Content-Type", "").startswith(JSON_CT):
        assert resp.json()["__type"] == "com.amazon.coral.service#AccessDeniedException", resp.text
        assert resp.headers["x-amzn-query-error"] == "AccessDenied;Sender"
    else:
        assert "<Code>AccessDenied</Code>" in resp.text and "<Type>Sender</Type>" in resp.text, resp.text


def assert_sns_denied(resp):
    assert resp.status_code == 403, f"HTTP {resp.status_code}: {resp.text[:400]}"
    assert "<Code>AuthorizationError</Code>" in resp.text, resp.text


def sns_client(endpoint):
    return boto3.client("sns", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test")


@pytest.fixture
def queue(sqs):
    """A queue holding one message whose body is a marker."""
    url = sqs.create_queue(QueueName=f"guard-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    marker = f"secret-{uuid.uuid4().hex}"
    sqs.send_message(QueueUrl=url, MessageBody=marker)
    yield url, marker
    sqs.delete_queue(QueueUrl=url)


def counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def host_of(endpoint):
    return urlsplit(endpoint).netloc


# ------------------------------------------------------------------------------------------ 1. foreign Origin

def test_foreign_origin_is_refused_in_both_protocols(endpoint, sqs, queue):
    url, _ = queue
    purge = f"Action=PurgeQueue&Version=2012-11-05&QueueUrl={q(url)}"
    for origin in [EVIL, "null", "http://127.0.0.1:1", endpoint.replace("http://", "https://")]:
        r = requests.post(endpoint + "/", data=purge, headers={"Content-Type": FORM_CT, "Origin": origin}, timeout=5)
        assert_sqs_denied(r)
    r = requests.post(endpoint + "/", json={"QueueUrl": url}, timeout=5,
                      headers={"X-Amz-Target": "AmazonSQS.PurgeQueue", "Content-Type": JSON_CT, "Origin": EVIL})
    assert_sqs_denied(r)
    r = requests.get(f"{endpoint}/?Action=DeleteQueue&QueueUrl={q(url)}", headers={"Origin": EVIL}, timeout=5)
    assert_sqs_denied(r)
    r = requests.post(endpoint + "/", json={"QueueUrl": url}, timeout=5,
                      headers={"X-Amz-Target": "AmazonSQS.PurgeQueue", "Content-Type": JSON_CT,
                               "Sec-Fetch-Site": "cross-site"})
    assert_sqs_denied(r)
    assert counts(sqs, url) == (1, 0), "nothing was purged"
    # The server's own origin (the dashboard's requests) passes.
    r = requests.post(endpoint + "/", json={}, timeout=5, headers={
        "X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": JSON_CT, "Origin": endpoint,
        "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200, r.text
    r = requests.get(endpoint + "/api/queues", headers={"Origin": endpoint}, timeout=5)
    assert r.status_code == 200, r.text


def test_cross_site_sns_requests_are_refused_in_sns_format(endpoint):
    r = requests.post(endpoint + "/", data="Action=CreateTopic&Version=2010-03-31&Name=evil", timeout=5,
                      headers={"Content-Type": FORM_CT, "Origin": EVIL})
    assert_sns_denied(r)


# ------------------------------------------------------------------------------------------ 2. DNS rebinding

def test_rebinding_host_gets_no_dashboard_data_and_no_api(endpoint, sqs, queue):
    url, marker = queue
    name = url.rsplit("/", 1)[1]
    peek = f"{endpoint}/api/queues/{name}/peek"
    ok = requests.get(peek, timeout=5)
    assert ok.status_code == 200 and marker in ok.text, "control: the server's own name sees the message"
    for host in ["rebind.attacker.example", "rebind.attacker.example:" + endpoint.rsplit(":", 1)[1]]:
        r = requests.get(peek, headers={"Host": host}, timeout=5)
        assert_sqs_denied(r)
        assert marker not in r.text
        r = requests.get(endpoint + "/api/queues", headers={"Host": host}, timeout=5)
        assert_sqs_denied(r)
        r = requests.post(endpoint + "/", data="Action=ListQueues&Version=2012-11-05", timeout=5,
                          headers={"Content-Type": FORM_CT, "Host": host})
        assert_sqs_denied(r)
        r = requests.get(endpoint + "/ui/", headers={"Host": host}, timeout=5)
        assert r.status_code == 403


def test_the_servers_own_names_pass(endpoint):
    port = endpoint.rsplit(":", 1)[1]
    for host in [f"localhost:{port}", f"127.0.0.1:{port}", "127.0.0.1", "localhost", f"[::1]:{port}",
                 f"LOCALHOST.:{port}", "10.9.8.7:80"]:
        r = requests.get(f"{endpoint}/?Action=ListQueues", headers={"Host": host}, timeout=5)
        assert r.status_code == 200, f"{host}: {r.text[:300]}"


def raw(endpoint, request_bytes):
    host, port = host_of(endpoint).rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request_bytes)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out.decode("utf-8", "replace")


def test_http10_without_host_is_served(endpoint):
    assert raw(endpoint, b"GET /health HTTP/1.0\r\n\r\n").startswith("HTTP/1.0 200")
    body = b"Action=ListQueues&Version=2012-11-05"
    out = raw(endpoint, b"POST / HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert out.startswith("HTTP/1.0 200"), out[:300]


@own_process
def test_allowed_hosts_option(tmp_path):
    s = SluiceServer(tmp_path / "a", log_name="guard-hosts", extra_args=["--allowed-hosts", "sqs.internal,.corp.test"])
    s.start()
    try:
        for host, status in [("sqs.internal:9324", 200), ("a.b.corp.test", 200), ("corp.test.evil", 403),
                             ("sqs.internal.evil", 403)]:
            r = requests.get(f"{s.endpoint}/?Action=ListQueues", headers={"Host": host}, timeout=5)
            assert r.status_code == status, f"{host}: {r.text[:300]}"
    finally:
        s.kill()
    s = SluiceServer(tmp_path / "b", log_name="guard-hosts-any", env={"SLUICE_ALLOWED_HOSTS": "*"})
    s.start()
    try:
        r = requests.get(f"{s.endpoint}/?Action=ListQueues", headers={"Host": "anything.example"}, timeout=5)
        assert r.status_code == 200, r.text
    finally:
        s.kill()


# ------------------------------------------------------------------------------------------ 3. unsigned GET

def test_unsigned_get_never_changes_state(endpoint, sqs, queue):
    url, marker = queue
    for query in [f"Action=DeleteQueue&QueueUrl={q(url)}",
                  f"Action=PurgeQueue&QueueUrl={q(url)}",
                  f"Action=SendMessage&QueueUrl={q(url)}&MessageBody=x",
                  f"Action=ReceiveMessage&QueueUrl={q(url)}",
                  f"Action=SetQueueAttributes&QueueUrl={q(url)}&Attribute.1.Name=DelaySeconds&Attribute.1.Value=5",
                  f"Action=ListQueues&Act%69on=PurgeQueue&QueueUrl={q(url)}",
                  "Action=CreateQueue&QueueName=by-get"]:
        r = requests.get(f"{endpoint}/?{query}", timeout=5)
        assert_sqs_denied(r)
    assert counts(sqs, url) == (1, 0), "nothing sent, purged or hidden"
    assert "by-get" not in str(sqs.list_queues().get("QueueUrls", []))
    name = url.rsplit("/", 1)[1]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for query in ["Action=ListQueues", f"Action=GetQueueUrl&QueueName={name}",
                  f"Action=GetQueueAttributes&QueueUrl={q(url)}&AttributeName.1=All",
                  f"Action=ListQueueTags&QueueUrl={q(url)}", f"Action=ListDeadLetterSourceQueues&QueueUrl={q(url)}",
                  f"Action=ListMessageMoveTasks&SourceArn={q(arn)}"]:
        r = requests.get(f"{endpoint}/?{query}", timeout=5)
        assert r.status_code == 200, f"{query}: {r.text[:300]}"


def test_unsigned_get_cannot_drive_sns(endpoint):
    sns = sns_client(endpoint)
    topic = sns.create_topic(Name=f"guard-{uuid.uuid4().hex[:8]}")["TopicArn"]
    for query in [f"Action=Publish&Version=2010-03-31&TopicArn={q(topic)}&Message=x",
                  f"Action=Subscribe&Version=2010-03-31&TopicArn={q(topic)}&Protocol=http"
                  f"&Endpoint={q('http://127.0.0.1:1/x')}",
                  f"Action=DeleteTopic&Version=2010-03-31&TopicArn={q(topic)}"]:
        assert_sns_denied(requests.get(f"{endpoint}/?{query}", timeout=5))
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    r = requests.get(f"{endpoint}/?Action=ListTopics&Version=2010-03-31", timeout=5)
    assert r.status_code == 200 and topic in r.text
    sns.delete_topic(TopicArn=topic)


def test_presigned_get_still_works(endpoint, sqs, queue):
    """A URL presigned by botocore's SigV4 query signer (what generate_presigned_url uses)."""
    url, _ = queue
    req = AWSRequest(method="GET", url=f"{endpoint}/?Action=SendMessage&Version=2012-11-05&QueueUrl={q(url)}"
                                       f"&MessageBody=presigned")
    SigV4QueryAuth(Credentials("test", "test"), "sqs", REGION, expires=300).add_auth(req)
    assert "X-Amz-Signature=" in req.url
    r = requests.get(req.url, timeout=5)
    assert r.status_code == 200, r.text
    assert counts(sqs, url) == (2, 0)


# ------------------------------------------------------------------------------------------ 4. HTML forms

@pytest.mark.parametrize("kind", ["urlencoded", "text/plain", "multipart"])
@pytest.mark.parametrize("who", ["origin", "fetch-metadata"])
def test_cross_origin_form_post_cannot_purge(endpoint, sqs, queue, kind, who):
    url, _ = queue
    headers = {"Origin": EVIL} if who == "origin" else {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    if kind == "urlencoded":
        r = requests.post(endpoint + "/", data={"Action": "PurgeQueue", "QueueUrl": url}, headers=headers, timeout=5)
    elif kind == "text/plain":
        # What <form enctype="text/plain"> sends; the action in the form's URL.
        r = requests.post(f"{endpoint}/?Action=PurgeQueue&QueueUrl={q(url)}", data=f"Action=PurgeQueue\r\nx=y\r\n",
                          headers={**headers, "Content-Type": "text/plain"}, timeout=5)
    else:
        r = requests.post(f"{endpoint}/?Action=PurgeQueue&QueueUrl={q(url)}",
                          files={"Action": (None, "PurgeQueue")}, headers=headers, timeout=5)
    assert_sqs_denied(r)
    assert counts(sqs, url) == (1, 0)


# ------------------------------------------------------------------------------------------ 5. SSRF

@own_process
def test_sns_subscriptions_to_private_addresses_need_leave(tmp_path):
    from test_sns import Receiver
    receiver = Receiver()
    s = SluiceServer(tmp_path / "data", log_name="guard-ssrf", env={"SLUICE_SNS_ALLOWED_NETWORKS": ""})
    s.start()
    try:
        sns = sns_client(s.endpoint)
        topic = sns.create_topic(Name="ssrf")["TopicArn"]
        port = receiver.url.split(":")[2].split("/")[0]
        for endpoint in [receiver.url, f"http://localhost:{port}/hook", f"http://[::1]:{port}/",
                         "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "https://192.168.1.1/",
                         "http://0.0.0.0:1/"]:
            protocol = endpoint.split(":")[0]
            with pytest.raises(sns.exceptions.InvalidParameterException) as e:
                sns.subscribe(TopicArn=topic, Protocol=protocol, Endpoint=endpoint)
            assert e.value.response["Error"]["Message"].startswith("Invalid parameter: Unreachable Endpoint"), \
                e.value.response
        assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
        assert receiver.posts == []
    finally:
        s.kill()
    s = SluiceServer(tmp_path / "data2", log_name="guard-ssrf-allowed", extra_args=["--sns-allow-private-endpoints"],
                     env={"SLUICE_SNS_ALLOWED_NETWORKS": ""})
    s.start()
    try:
        sns = sns_client(s.endpoint)
        topic = sns.create_topic(Name="ssrf")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "SubscriptionConfirmation")
    finally:
        s.kill()
        receiver.close()


# ------------------------------------------------------------------------------------------ 6. file modes

def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@own_process
def test_data_directory_is_private(tmp_path):
    # The harness makes its directory itself (0755 under the usual umask): point sluice at a new
    # directory inside it, which sluice creates.
    data = tmp_path / "harness" / "store"
    s = SluiceServer(tmp_path / "harness", log_name="guard-files",
                     args=["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data)])
    s.start()
    try:
        url = make_client(s.endpoint).create_queue(QueueName="modes")["QueueUrl"]
        make_client(s.endpoint).send_message(QueueUrl=url, MessageBody="private")
    finally:
        assert s.stop() == 0
    assert mode(data) == 0o700, oct(mode(data))
    files = sorted(os.listdir(data))
    assert {"LOCK", "receipt.key", "sluice.redb", "sluice.wal", "sluice.wal2"} <= set(files), files
    for f in files:
        assert mode(data / f) == 0o600, f"{f}: {oct(mode(data / f))}"


@own_process
def test_wide_modes_are_warned_about_at_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    (data / "receipt.key").write_bytes(os.urandom(32))
    os.chmod(data / "receipt.key", 0o644)
    s = SluiceServer(data, log_name="guard-wide", env={"SLUICE_LOG_FORMAT": "json"})
    s.start()
    s.kill()
    warned = {}
    for line in open(s.log_path, encoding="utf-8", errors="replace"):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        fields = event.get("fields", {})
        if event.get("level") == "WARN" and "path" in fields:
            warned[fields["path"]] = fields.get("mode")
    assert warned.get(str(data)) == "0755", warned
    assert warned.get(str(data / "receipt.key")) == "0644", warned
    assert mode(data) == 0o755, "warned about, not changed"
