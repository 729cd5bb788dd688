"""SigV4 authentication, black-box: a sluice started with access keys (issue 23 items 1-3).

Every client here signs with its own code, nobody's but AWS's: boto3/botocore (JSON for SQS, Query for SNS),
botocore's SigV4Auth / SigV4QueryAuth for raw and presigned requests, the pip AWS CLI (JSON) and a Query-protocol
CLI (Debian's /usr/bin/aws or the awscli 1.29.80 venv tests/cli/run.sh installs). The errors expected are AWS's:
MissingAuthenticationToken / InvalidClientTokenId / SignatureDoesNotMatch 403, IncompleteSignature 400 (SQS's
Common Errors page); JSON __types as AWS's framework sends them (recorded by dynalite, mhart/dynalite index.js).
"""

import datetime
import email.utils
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlencode

import boto3
import botocore
import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from sluice_server import REPO_ROOT, SluiceServer, sluice_bin

REGION = "us-east-1"
KEY, SECRET = "AKSLUICETESTKEY00001", "file-secret-0123456789abcdefghijklmnopqrs"
ENV_KEY, ENV_SECRET = "AKSLUICETESTKEY00002", "env-secret-0123456789abcdefghijklmnopqrst"
JSON_CT = "application/x-amz-json-1.0"
FORM_CT = "application/x-www-form-urlencoded"

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="starts its own sluice with keys")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sigv4")
    config = root / "sluice.toml"
    config.write_text(
        "[[access_keys]]\n"
        f'id = "{KEY}"\nsecret = "{SECRET}"\naccount_id = "000000000000"\n'
        'principal_arn = "arn:aws:iam::000000000000:user/tester"\n'
        # An identity policy is enforced (test_policy.py): this one allows everything.
        "policy = '{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"*\", "
        "\"Resource\": \"*\"}]}'\n")
    s = SluiceServer(root / "data", log_name="sigv4-server", extra_args=["--config", str(config)],
                     env={"SLUICE_ACCESS_KEY_ID": ENV_KEY, "SLUICE_SECRET_ACCESS_KEY": ENV_SECRET})
    s.start()
    yield s
    assert s.stop() == 0
    log = Path(s.log_path).read_text()
    assert SECRET not in log and ENV_SECRET not in log, "secrets must never be logged"


@pytest.fixture(scope="module")
def ep(server):
    return server.endpoint


@pytest.fixture
def signed_queue(ep, unique_name):
    """A queue created with a signed client; deleted after the test."""
    sqs = client(ep)
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


def client(endpoint, service="sqs", key=KEY, secret=SECRET, token=None, **config):
    cfg = Config(retries={"total_max_attempts": 1}, **config)
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token, config=cfg)


def error_of(exc):
    return exc.response["Error"].get("Code"), exc.response["ResponseMetadata"]["HTTPStatusCode"], \
        exc.response["Error"].get("Message", "")


def signed(method, url, body=b"", headers=None, key=KEY, secret=SECRET, service="sqs"):
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(key, secret), service, REGION).add_auth(req)
    return dict(req.headers.items())


def at(delta_seconds):
    """Patches botocore's clock (what SigV4Auth stamps into X-Amz-Date) by `delta_seconds`."""
    real = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return mock.patch("botocore.auth.get_current_datetime",
                      return_value=real + datetime.timedelta(seconds=delta_seconds))


def test_boto3_signing_with_either_key_works(ep, unique_name):
    for key, secret in [(KEY, SECRET), (ENV_KEY, ENV_SECRET)]:
        sqs = client(ep, key=key, secret=secret)
        url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="signed")
        msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert msgs[0]["Body"] == "signed"
        sqs.delete_queue(QueueUrl=url)


def test_wrong_secret_is_signature_does_not_match(ep):
    with pytest.raises(ClientError) as ei:
        client(ep, secret="not-the-secret").list_queues()
    code, status, message = error_of(ei.value)
    assert (code, status) == ("SignatureDoesNotMatch", 403)
    assert message.startswith("The request signature we calculated does not match the signature you provided.")
    assert "The Canonical String for this request should have been" in message
    # The JSON __type botocore keeps as QueryErrorCode (awsQueryCompatible): AWS framework's name.
    assert ei.value.response["Error"].get("QueryErrorCode") == "InvalidSignatureException"


def test_unknown_key_is_invalid_client_token_id(ep):
    with pytest.raises(ClientError) as ei:
        client(ep, key="AKNOBODY", secret=SECRET).list_queues()
    assert error_of(ei.value) == ("InvalidClientTokenId", 403, "The security token included in the request is invalid.")


def test_a_session_token_is_invalid(ep):
    with pytest.raises(ClientError) as ei:
        client(ep, token="FwoGZXIvYXdzEXAMPLE").list_queues()
    assert error_of(ei.value)[:2] == ("InvalidClientTokenId", 403)


def test_no_signature_is_missing_authentication_token(ep):
    with pytest.raises(ClientError) as ei:
        client(ep, signature_version=botocore.UNSIGNED).list_queues()
    assert error_of(ei.value) == ("MissingAuthenticationToken", 403, "Request is missing Authentication Token")
    r = requests.post(ep + "/", data="{}", headers={"Content-Type": JSON_CT, "X-Amz-Target": "AmazonSQS.ListQueues"})
    assert r.status_code == 403
    assert r.json() == {"__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
                        "message": "Request is missing Authentication Token"}
    assert r.headers["x-amzn-query-error"] == "MissingAuthenticationToken;Sender"
    r = requests.post(ep + "/", data="Action=ListQueues&Version=2012-11-05", headers={"Content-Type": FORM_CT})
    assert r.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in r.text, r.text
    # An unsigned GET with an Action (what a link or an <img> sends) is refused too.
    r = requests.get(ep + "/?Action=ListQueues")
    assert r.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in r.text


def test_incomplete_signature(ep):
    r = requests.post(ep + "/", data="{}", headers={
        "Content-Type": JSON_CT, "X-Amz-Target": "AmazonSQS.ListQueues",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={KEY}/20260101/us-east-1/sqs/aws4_request"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["__type"] == "com.amazon.coral.service#IncompleteSignatureException"
    assert body["message"].startswith("Authorization header requires 'Signature' parameter.")
    assert r.headers["x-amzn-query-error"] == "IncompleteSignature;Sender"


def test_every_response_carries_a_date_header(ep):
    """SDKs correct their clock skew from the Date header (botocore's retry handler, the Rust SDK)."""
    ok = requests.post(ep + "/", data="{}", headers=signed(
        "POST", ep + "/", b"{}", {"Content-Type": JSON_CT, "X-Amz-Target": "AmazonSQS.ListQueues"}))
    denied = requests.post(ep + "/", data="{}", headers={"Content-Type": JSON_CT,
                                                               "X-Amz-Target": "AmazonSQS.ListQueues"})
    health = requests.get(ep + "/health")
    assert ok.status_code == 200 and denied.status_code == 403 and health.status_code == 200
    for r in (ok, denied, health):
        sent = email.utils.parsedate_to_datetime(r.headers["Date"])
        assert abs(time.time() - sent.timestamp()) < 5, r.headers["Date"]


def test_clock_skew_of_15_minutes(ep):
    sqs = client(ep)
    with at(-14 * 60):
        sqs.list_queues()
    with at(-20 * 60), pytest.raises(ClientError) as ei:
        sqs.list_queues()
    code, status, message = error_of(ei.value)
    assert (code, status) == ("SignatureDoesNotMatch", 403)
    assert message.startswith("Signature expired: ") and message.endswith(" - 15 min.)"), message
    assert " is now earlier than " in message
    with at(20 * 60), pytest.raises(ClientError) as ei:
        sqs.list_queues()
    code, status, message = error_of(ei.value)
    assert (code, status) == ("SignatureDoesNotMatch", 403)
    assert message.startswith("Signature not yet current: "), message


def presigned(url, expires, key=KEY, secret=SECRET, method="GET"):
    req = AWSRequest(method=method, url=url)
    SigV4QueryAuth(Credentials(key, secret), "sqs", REGION, expires=expires).add_auth(req)
    return req.url


def test_presigned_url(ep, signed_queue):
    url = signed_queue
    sqs = client(ep)
    send = url + "?" + urlencode({"Action": "SendMessage", "MessageBody": "via a presigned URL",
                                  "Version": "2012-11-05"})
    r = requests.get(presigned(send, 60))
    assert r.status_code == 200, r.text
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "via a presigned URL"
    # A parameter changed after signing.
    tampered = presigned(send, 60).replace("presigned", "forged")
    r = requests.get(tampered)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text, r.text
    # Signed two minutes ago for one minute: expired.
    with at(-120):
        old = presigned(send, 60)
    r = requests.get(old)
    assert r.status_code == 403 and "Request has expired" in r.text, r.text
    # Signed with a wrong secret.
    r = requests.get(presigned(send, 60, secret="wrong"))
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text


def query_cli():
    """A CLI whose botocore speaks the Query protocol to SQS, as tests/cli/run.sh finds one."""
    debian = Path("/usr/bin/aws")
    if debian.exists():
        return str(debian)
    venv = Path(os.environ.get("VENV", REPO_ROOT / ".venv")) / "awscli-query" / "bin" / "aws"
    return str(venv) if venv.exists() else None


def test_generate_presigned_url_of_a_query_protocol_botocore(ep, signed_queue):
    """botocore's own generate_presigned_url (Query-protocol SQS model: the parameters go into the URL)."""
    cli = query_cli()
    if cli is None:
        pytest.skip("no query-protocol AWS CLI installed (Debian's awscli, or the venv tests/cli/run.sh installs)")
    url = signed_queue
    if cli == "/usr/bin/aws":
        # Debian's awscli 2.9.19 carries its own botocore (Query-protocol SQS model) as awscli.botocore.
        python, module = "/usr/bin/python3", "awscli.botocore"
    else:
        python, module = str(Path(cli).parent / "python"), "botocore"
    script = (
        f"import {module}.session as s\n"
        f"c=s.get_session().create_client('sqs',endpoint_url={ep!r},region_name='us-east-1',"
        f"aws_access_key_id={KEY!r},aws_secret_access_key={SECRET!r})\n"
        f"print(c.generate_presigned_url('send_message',Params={{'QueueUrl':{url!r},'MessageBody':'generated'}},"
        "ExpiresIn=60))\n")
    presigned_url = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert "X-Amz-Signature=" in presigned_url and "MessageBody=generated" in presigned_url, presigned_url
    # botocore presigns the operation's method (POST for the Query protocol), with no body.
    r = requests.post(presigned_url)
    assert r.status_code == 200, r.text
    assert client(ep).receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "generated"


def test_query_protocol_requests(ep):
    body = urlencode({"Action": "ListQueues", "Version": "2012-11-05"}).encode()
    ok = requests.post(ep + "/", data=body, headers=signed("POST", ep + "/", body, {"Content-Type": FORM_CT}))
    assert ok.status_code == 200, ok.text
    bad = requests.post(ep + "/", data=body,
                        headers=signed("POST", ep + "/", body, {"Content-Type": FORM_CT}, secret="wrong"))
    assert bad.status_code == 403
    assert "<Type>Sender</Type><Code>SignatureDoesNotMatch</Code>" in bad.text, bad.text
    # The body changed after signing.
    other = urlencode({"Action": "CreateQueue", "QueueName": "sneaky", "Version": "2012-11-05"}).encode()
    swapped = requests.post(ep + "/", data=other,
                            headers=signed("POST", ep + "/", body, {"Content-Type": FORM_CT}))
    assert swapped.status_code == 403, swapped.text


def run_cli(binary, endpoint, key, secret, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    return subprocess.run([binary, "--endpoint-url", endpoint, *args], capture_output=True, text=True, env=env,
                          timeout=60)


def json_cli():
    venv = Path(sys.executable).parent / "aws"
    return str(venv) if venv.exists() else shutil.which("aws")


@pytest.mark.parametrize("which", ["json", "query"])
def test_aws_cli(ep, unique_name, which):
    binary = json_cli() if which == "json" else query_cli()
    if binary is None:
        pytest.skip(f"no {which}-protocol AWS CLI installed")
    name = unique_name()
    ok = run_cli(binary, ep, KEY, SECRET, "sqs", "create-queue", "--queue-name", name)
    assert ok.returncode == 0, ok.stderr
    wrong = run_cli(binary, ep, KEY, "wrong", "sqs", "list-queues")
    assert wrong.returncode != 0 and "SignatureDoesNotMatch" in wrong.stderr, wrong.stderr
    unknown = run_cli(binary, ep, "AKNOBODY", SECRET, "sqs", "list-queues")
    assert unknown.returncode != 0 and "InvalidClientTokenId" in unknown.stderr, unknown.stderr
    url = json.loads(ok.stdout)["QueueUrl"]
    assert run_cli(binary, ep, ENV_KEY, ENV_SECRET, "sqs", "delete-queue", "--queue-url", url).returncode == 0


def test_sns_is_signed_for_the_sns_service(ep, unique_name):
    sns = client(ep, "sns")
    arn = sns.create_topic(Name=unique_name())["TopicArn"]
    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    with pytest.raises(ClientError) as ei:
        client(ep, "sns", secret="wrong").list_topics()
    assert error_of(ei.value)[:2] == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as ei:
        client(ep, "sns", key="AKNOBODY").list_topics()
    assert error_of(ei.value)[:2] == ("InvalidClientTokenId", 403)
    with pytest.raises(ClientError) as ei:
        client(ep, "sns", signature_version=botocore.UNSIGNED).list_topics()
    assert error_of(ei.value)[:2] == ("MissingAuthenticationToken", 403)
    # Signed for SQS, sent to SNS: the credential's scope names the wrong service.
    body = urlencode({"Action": "ListTopics", "Version": "2010-03-31"}).encode()
    r = requests.post(ep + "/", data=body,
                      headers=signed("POST", ep + "/", body, {"Content-Type": FORM_CT}, service="sqs"))
    assert r.status_code == 403, r.text
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text, r.text
    assert "Credential should be scoped to correct service: " in r.text and "sns" in r.text, r.text
    sns.delete_topic(TopicArn=arn)


def test_the_admin_api_needs_a_signature_health_does_not(ep):
    assert requests.get(ep + "/health").status_code == 200
    r = requests.get(ep + "/api/queues")
    assert r.status_code == 403 and r.json()["__type"].endswith("MissingAuthenticationTokenException"), r.text
    r = requests.get(ep + "/api/queues", headers=signed("GET", ep + "/api/queues"))
    assert r.status_code == 200, r.text


def test_keygen_prints_a_pair_the_server_accepts(tmp_path):
    out = subprocess.run([str(sluice_bin()), "keygen"], capture_output=True, text=True, check=True).stdout
    entry = {k.strip(): v.strip().strip('"') for k, _, v in
             (line.partition("=") for line in out.splitlines() if line.startswith(("id =", "secret =")))}
    assert len(entry["id"]) == 20 and len(entry["secret"]) == 40, out
    again = subprocess.run([str(sluice_bin()), "keygen"], capture_output=True, text=True, check=True).stdout
    assert again != out
    s = SluiceServer(tmp_path / "data", log_name="sigv4-keygen",
                     env={"SLUICE_ACCESS_KEY_ID": entry["id"], "SLUICE_SECRET_ACCESS_KEY": entry["secret"]})
    s.start()
    try:
        client(s.endpoint, key=entry["id"], secret=entry["secret"]).list_queues()
        with pytest.raises(ClientError):
            client(s.endpoint, key=KEY, secret=SECRET).list_queues()
    finally:
        assert s.stop() == 0


def spawn(args, env=None):
    full_env = dict(os.environ)
    for k in ("SLUICE_ACCESS_KEY_ID", "SLUICE_SECRET_ACCESS_KEY", "SLUICE_AUTH", "SLUICE_HOST", "SLUICE_CONFIG"):
        full_env.pop(k, None)
    full_env.update(env or {})
    return subprocess.Popen([str(sluice_bin()), "serve", "--port", "0", "--data-dir", ":memory:", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)


def test_protected_mode_refuses_a_public_address_without_keys():
    p = spawn(["--host", "0.0.0.0"])
    out, err = p.communicate(timeout=30)
    assert p.returncode == 2, (out, err)
    assert out == "", "nothing served, no ready line"
    assert "--auth off" in err and "SLUICE_AUTH=off" in err, err
    assert "SLUICE_ACCESS_KEY_ID" in err and "[[access_keys]]" in err, err


@pytest.mark.parametrize("how", [["--auth", "off"], "SLUICE_AUTH=off", "keys"])
def test_protected_mode_ways_out(how):
    args, env = ["--host", "0.0.0.0"], {}
    if how == "SLUICE_AUTH=off":
        env["SLUICE_AUTH"] = "off"
    elif how == "keys":
        env.update(SLUICE_ACCESS_KEY_ID=KEY, SLUICE_SECRET_ACCESS_KEY=SECRET)
    else:
        args += how
    p = spawn(args, env)
    try:
        line = p.stdout.readline().strip()
        assert line.startswith("sluice listening on http://0.0.0.0:"), (line, p.stderr.read() if p.poll() else "")
        port = line.rsplit(":", 1)[1]
        r = requests.post(f"http://127.0.0.1:{port}/", data="{}",
                          headers={"Content-Type": JSON_CT, "X-Amz-Target": "AmazonSQS.ListQueues"})
        assert r.status_code == (403 if how == "keys" else 200), r.text
    finally:
        p.terminate()
        p.wait(timeout=30)
