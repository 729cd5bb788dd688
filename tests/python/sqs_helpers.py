"""Helpers for the black-box SQS tests: clients, error assertions, MD5 digests, raw HTTP for both wire protocols."""

import contextlib
import hashlib
import os
import struct
import xml.etree.ElementTree as ET
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REGION = os.environ.get("SQS_REGION", "us-east-1")
ACCOUNT_ID = os.environ.get("SQS_ACCOUNT_ID", "000000000000")
QUERY_NS = "http://queue.amazonaws.com/doc/2012-11-05/"
JSON_CT = "application/x-amz-json-1.0"
FORM_CT = "application/x-www-form-urlencoded"

# Modeled SQS errors: shape name (the JSON `__type`, which botocore keeps as Error.QueryErrorCode and turns into the
# exception class) -> the Query-protocol error code (sent as `x-amzn-query-error: CODE;Sender`, which botocore shows
# as Error.Code). From the SQS service model; the Query codes are those of the last Query-protocol model
# (botocore 1.31.80). Errors not listed here (InvalidParameterValue, MissingParameter, ...) use one name for both.
QUERY_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "QueueDeletedRecently": "AWS.SimpleQueueService.QueueDeletedRecently",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
}
# Modeled errors whose Query code is the shape name itself.
MODELED_SAME = {"InvalidAttributeName", "InvalidAttributeValue", "InvalidMessageContents", "ReceiptHandleIsInvalid",
                "InvalidIdFormat", "OverLimit", "InvalidAddress", "InvalidSecurity", "RequestThrottled",
                "ResourceNotFoundException"}


# HTTP statuses that are not 400. The API reference pages list 400 for nearly every error, but recorded AWS
# traffic (LocalStack's snapshots validated against AWS; the last Query-protocol model's httpStatusCode traits)
# shows these; we follow what AWS actually answers.
STATUS = {"ReceiptHandleIsInvalid": 404, "PurgeQueueInProgress": 403, "OverLimit": 403}


def query_code(name):
    return QUERY_CODES.get(name, name)


def status_of(name):
    """The HTTP status AWS answers with for error `name` (shape name or Query code)."""
    short = name.rsplit(".", 1)[-1] if name.startswith("AWS.SimpleQueueService.") else name
    return STATUS.get(short, 400)


def make_client(endpoint, **config):
    settings = {"retries": {"total_max_attempts": 1}, "connect_timeout": 5, "read_timeout": 60}
    settings.update(config)
    cfg = Config(**settings)
    return boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test", config=cfg)


def check_client_error(exc, name, status=None):
    """Assert that a botocore ClientError is the AWS error `name` with HTTP `status`.

    `name` is the modeled shape (e.g. "QueueDoesNotExist") or a common error code ("InvalidParameterValue").
    Checks the HTTP status, Error.Code (the Query code, via the x-amzn-query-error header) and, for modeled errors,
    the JSON `__type` (Error.QueryErrorCode), which decides the boto3 exception class.
    """
    status = status_of(name) if status is None else status
    resp = exc.response
    err = resp.get("Error", {})
    got_status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
    shown = {k: (v[:120] + "..." if isinstance(v, str) and len(v) > 120 else v) for k, v in err.items()}
    summary = f"status={got_status} Error={shown}"
    assert err.get("Code") == query_code(name), f"expected Error.Code {query_code(name)!r}, got {summary}"
    if name in QUERY_CODES or name in MODELED_SAME:
        assert err.get("QueryErrorCode", err.get("Code")) == name, \
            f"expected __type {name!r} (modeled exception), got {summary}"
    if "QueryErrorCode" in err:  # the x-amzn-query-error header was present
        assert err.get("Type") == "Sender", f"x-amzn-query-error should end in ';Sender': {summary}"
    assert got_status == status, f"expected HTTP {status}, got {summary}"


@contextlib.contextmanager
def expect_error(name, status=None):
    """`with expect_error("QueueDoesNotExist"): client.get_queue_url(...)`"""
    with pytest.raises(ClientError) as ei:
        yield ei
    check_client_error(ei.value, name, status)


def expect_one_of(exc, names):
    code = exc.response.get("Error", {}).get("Code")
    assert code in {query_code(n) for n in names}, f"expected one of {names}, got {exc.response.get('Error')}"
    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == status_of(code), exc.response


# ---------------------------------------------------------------------------------------------------------------
# MD5 digests as SQS computes them.

def md5_hex(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.md5(data).hexdigest()


def _len_prefixed(b):
    return struct.pack(">I", len(b)) + b


def md5_of_message_attributes(attrs):
    """MD5OfMessageAttributes: for each attribute sorted by name, length-prefixed name, data type, a transport byte
    (1 string/number, 2 binary) and length-prefixed value; MD5 over the concatenation."""
    buf = b""
    for name in sorted(attrs):
        v = attrs[name]
        buf += _len_prefixed(name.encode("utf-8")) + _len_prefixed(v["DataType"].encode("utf-8"))
        if "StringValue" in v:
            buf += b"\x01" + _len_prefixed(v["StringValue"].encode("utf-8"))
        else:
            val = v["BinaryValue"]
            buf += b"\x02" + _len_prefixed(val if isinstance(val, bytes) else bytes(val))
    return hashlib.md5(buf).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Raw HTTP. Requests are SigV4-signed with the dummy credentials (test/test) unless sign=False, so that each ugly
# case carries exactly one fault; the body is signed as the bytes sent.

def _signed_headers(method, url, body, headers):
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials("test", "test"), "sqs", REGION).add_auth(req)
    return dict(req.headers.items())


def raw_post(url, body, headers, sign=True, timeout=30):
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = dict(headers)
    if sign:
        headers = _signed_headers("POST", url, body, headers)
    return requests.post(url, data=body, headers=headers, timeout=timeout)


def json_request(endpoint, action, payload=None, body=None, content_type=JSON_CT, target_prefix="AmazonSQS",
                 extra_headers=None, sign=True):
    """POST an AWS JSON 1.0 request; `body` (bytes/str) overrides the JSON-encoded `payload`."""
    import json as _json
    if body is None:
        body = _json.dumps(payload if payload is not None else {})
    headers = {"Content-Type": content_type}
    if action is not None:
        headers["X-Amz-Target"] = f"{target_prefix}.{action}"
    headers.update(extra_headers or {})
    return raw_post(endpoint.rstrip("/") + "/", body, headers, sign=sign)


def query_request(url, params=None, body=None, content_type=FORM_CT, version=True, sign=True):
    """POST a Query-protocol request (form-encoded) to `url` (the endpoint or a queue URL)."""
    if body is None:
        params = dict(params or {})
        if version:
            params.setdefault("Version", "2012-11-05")
        body = urlencode(params)
    headers = {"Content-Type": content_type} if content_type else {}
    if not urlsplit(url).path:
        url = url + "/"
    return raw_post(url, body, headers, sign=sign)


def strip_ns(tag):
    return tag.split("}", 1)[1] if "}" in tag else tag


def ns_of(tag):
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def parse_xml(resp):
    try:
        return ET.fromstring(resp.content)
    except ET.ParseError as e:
        raise AssertionError(f"response is not XML ({e}): HTTP {resp.status_code} {resp.content[:500]!r}")


def child(el, name):
    for c in el:
        if strip_ns(c.tag) == name:
            return c
    return None


def children(el, name):
    return [c for c in el if strip_ns(c.tag) == name]


def path_text(el, *names):
    for n in names:
        el = child(el, n)
        if el is None:
            return None
    return el.text or ""


def xml_error(resp):
    """Check the Query-protocol error shape and return (Type, Code, Message)."""
    root = parse_xml(resp)
    assert strip_ns(root.tag) == "ErrorResponse", f"root is {root.tag}: {resp.text[:500]}"
    err = child(root, "Error")
    assert err is not None, f"no <Error> in {resp.text[:500]}"
    typ, code, msg = path_text(err, "Type"), path_text(err, "Code"), path_text(err, "Message")
    assert code, f"empty <Code> in {resp.text[:500]}"
    assert child(root, "RequestId") is not None, f"no <RequestId> in {resp.text[:500]}"
    return typ, code, msg


def json_error(resp):
    """Check the JSON-protocol error shape and return (__type short name, message, x-amzn-query-error)."""
    ct = resp.headers.get("Content-Type", "")
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: HTTP {resp.status_code} {ct} {resp.content[:500]!r}")
    assert isinstance(body, dict) and body.get("__type"), f"no __type in error body {body!r}"
    assert isinstance(body.get("message", body.get("Message")), str), f"no message in error body {body!r}"
    short = body["__type"].rsplit("#", 1)[-1]
    return short, body.get("message", body.get("Message")), resp.headers.get("x-amzn-query-error")


def aws_error_body(resp):
    """Either AWS error shape is fine (used where the protocol of the answer cannot be known)."""
    text = resp.content.lstrip()
    if text.startswith(b"<"):
        return ("xml",) + xml_error(resp)
    return ("json",) + json_error(resp)


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the FIFO, dead-letter-queue, move-task, tags/permissions and model-coverage suites.

def queue_arn(sqs, url):
    """The QueueArn attribute of the queue at `url` (asked of the server, so account and region match it)."""
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def redrive_policy(dlq_arn, max_receive_count):
    """A RedrivePolicy attribute value (a JSON string, as SQS carries it)."""
    import json as _json
    return _json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})


def wait_for(fetch, timeout=5.0, interval=0.1, what="condition"):
    """Call fetch() until it returns something truthy (returned) or `timeout` seconds pass (AssertionError)."""
    import time as _time
    deadline = _time.monotonic() + timeout
    last = None
    while True:
        last = fetch()
        if last:
            return last
        if _time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")
        _time.sleep(interval)


def query_ok(resp, action):
    """Check a Query-protocol success envelope (<ActionResponse xmlns=...>) and return its <ActionResult> element
    (None for actions without a result)."""
    assert resp.status_code == 200, f"{action}: HTTP {resp.status_code}: {resp.text[:500]}"
    ctype = resp.headers.get("Content-Type", "")
    assert "xml" in ctype, f"{action}: Content-Type {ctype!r}"
    root = parse_xml(resp)
    assert strip_ns(root.tag) == f"{action}Response", f"root element {root.tag}: {resp.text[:300]}"
    assert ns_of(root.tag) == QUERY_NS, f"namespace {ns_of(root.tag)!r}, expected {QUERY_NS}"
    assert path_text(root, "ResponseMetadata", "RequestId"), f"{action}: no ResponseMetadata/RequestId"
    return child(root, f"{action}Result")


def query_attributes(el):
    """<Attribute><Name/><Value/></Attribute>* under `el` as a dict."""
    return {path_text(a, "Name"): path_text(a, "Value") for a in children(el, "Attribute")}


def query_error_code(resp, name=None):
    """Check a Query-protocol error document and return its <Code>. With `name` (a shape name or common code),
    also assert the code and HTTP status AWS uses for it."""
    typ, code, _ = xml_error(resp)
    assert typ == "Sender", f"<Type>{typ}</Type>: {resp.text[:300]}"
    if name is not None:
        assert code == query_code(name), f"expected <Code>{query_code(name)}</Code>, got {code}: {resp.text[:300]}"
        assert resp.status_code == status_of(name), f"expected HTTP {status_of(name)}, got {resp.status_code}"
    return code


# ResourceNotFoundException (the move-task actions) is answered with HTTP 404: the last Query-protocol model's
# httpStatusCode trait, and AWS recordings of CancelMessageMoveTask / StartMessageMoveTask (localstack's
# AWS-validated test_sqs_move_task snapshots).
STATUS.setdefault("ResourceNotFoundException", 404)
