"""Raw-HTTP ugly cases for both wire protocols: each must get a 4xx with an AWS-style error body, and the server
must stay up (the `alive` check after each case).

JSON protocol errors: body {"__type": "...", "message": "..."}, Content-Type application/x-amz-json-1.0, and the
`x-amzn-query-error: <Query code>;Sender` header that query-compatible SDKs (botocore, aws-sdk-*) read.
Query protocol errors: <ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>.
"""

import json
import uuid

import pytest
import requests

from sqs_helpers import (ACCOUNT_ID, FORM_CT, JSON_CT, aws_error_body, json_error, json_request, query_request,
                         raw_post, xml_error)

TEN_MIB = 10 * 1024 * 1024


@pytest.fixture
def alive(sqs):
    """After the test, a plain request must still work."""
    yield
    sqs.list_queues(MaxResults=1)


def assert_json_client_error(resp, expected_type=None, query_code=None):
    assert 400 <= resp.status_code < 500, f"HTTP {resp.status_code}: {resp.content[:300]!r}"
    short, msg, header = json_error(resp)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith(JSON_CT), f"error Content-Type {ctype!r}, expected {JSON_CT}"
    # Every JSON-protocol client error carries `x-amzn-query-error: <Query code>;Sender`.
    assert header and header.endswith(";Sender") and len(header) > len(";Sender"), \
        f"x-amzn-query-error {header!r} (__type {short!r}), expected '<Code>;Sender'"
    if expected_type:
        assert short == expected_type, f"__type {short!r}, expected {expected_type!r}"
    if query_code:
        assert header == f"{query_code};Sender", f"x-amzn-query-error {header!r}, expected '{query_code};Sender'"
    return short, msg, header


def assert_query_client_error(resp, codes=None):
    assert 400 <= resp.status_code < 500, f"HTTP {resp.status_code}: {resp.content[:300]!r}"
    typ, code, msg = xml_error(resp)
    assert typ == "Sender", f"<Type>{typ}</Type>"
    if codes:
        assert code in codes, f"<Code>{code}</Code>, expected one of {codes}"
    return code


# ------------------------------------------------------------------------------------------------ JSON: well-formed

def test_json_success_shape(endpoint, alive):
    name = f"raw-{uuid.uuid4().hex[:12]}"
    resp = json_request(endpoint, "CreateQueue", {"QueueName": name})
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("Content-Type", "").startswith(JSON_CT)
    url = resp.json()["QueueUrl"]
    assert url == f"{endpoint}/{ACCOUNT_ID}/{name}"
    resp = json_request(endpoint, "DeleteQueue", {"QueueUrl": url})
    assert resp.status_code == 200, resp.text


def test_json_nonexistent_queue_error_and_header(endpoint, alive):
    resp = json_request(endpoint, "GetQueueUrl", {"QueueName": f"missing-{uuid.uuid4().hex}"})
    assert resp.status_code == 400
    assert resp.headers.get("Content-Type", "").startswith(JSON_CT)
    assert_json_client_error(resp, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


def test_json_error_header_for_common_error(endpoint, queue, alive):
    resp = json_request(endpoint, "SendMessage", {"QueueUrl": queue, "MessageBody": "x", "DelaySeconds": 901})
    assert resp.status_code == 400
    assert_json_client_error(resp, query_code="InvalidParameterValue")


def test_json_error_header_for_queue_name_exists(endpoint, make_queue, unique_name, alive):
    name = unique_name()
    make_queue(name=name, VisibilityTimeout=31)
    resp = json_request(endpoint, "CreateQueue", {"QueueName": name, "Attributes": {"VisibilityTimeout": "32"}})
    assert resp.status_code == 400
    assert_json_client_error(resp, "QueueNameExists", "QueueAlreadyExists")


def test_json_missing_required_parameter(endpoint, alive):
    resp = json_request(endpoint, "GetQueueUrl", {})
    short, _, header = assert_json_client_error(resp)
    assert header and header.endswith(";Sender"), f"x-amzn-query-error {header!r}"


# ------------------------------------------------------------------------------------------------ JSON: ugly

@pytest.mark.parametrize("body", [
    b'{"QueueName": ',
    b"{not json}",
    b"",
    b"[]",
    b'"a string"',
    b"42",
    b"null",
    b'{"QueueName": "\xff\xfe"}',  # invalid UTF-8 inside a string
    b"\xff\xfe\x00\x01",
], ids=["truncated", "garbage", "empty", "array", "string", "number", "null", "bad-utf8-in-string", "binary"])
def test_json_malformed_bodies(endpoint, body, alive):
    resp = json_request(endpoint, "CreateQueue", body=body)
    assert_json_client_error(resp)


@pytest.mark.parametrize("action,payload", [
    ("CreateQueue", {"QueueName": 123}),
    ("CreateQueue", {"QueueName": "x", "Attributes": ["not", "a", "map"]}),
    ("ReceiveMessage", {"QueueUrl": "__QUEUE__", "MaxNumberOfMessages": "ten"}),
    ("ReceiveMessage", {"QueueUrl": "__QUEUE__", "WaitTimeSeconds": {"n": 1}}),
    ("SendMessage", {"QueueUrl": "__QUEUE__", "MessageBody": ["list"]}),
    ("SendMessageBatch", {"QueueUrl": "__QUEUE__", "Entries": {"Id": "a"}}),
    ("ListQueues", {"MaxResults": 1.5}),
], ids=["name-int", "attributes-list", "max-string", "wait-object", "body-list", "entries-object", "max-float"])
def test_json_wrong_types(endpoint, queue, action, payload, alive):
    payload = {k: (queue if v == "__QUEUE__" else v) for k, v in payload.items()}
    resp = json_request(endpoint, action, payload)
    assert_json_client_error(resp)


@pytest.mark.parametrize("target", ["AmazonSQS.NoSuchAction", "AmazonSQS.", "DynamoDB_20120810.ListTables",
                                    "AmazonSQS.createqueue", "garbage"])
def test_json_unknown_target(endpoint, target, alive):
    prefix, _, action = target.partition(".")
    resp = json_request(endpoint, action if _ else None, {"QueueName": "x"}, target_prefix=prefix,
                        extra_headers=None if _ else {"X-Amz-Target": target})
    assert_json_client_error(resp)


def test_json_ten_mib_body(endpoint, queue, alive):
    payload = json.dumps({"QueueUrl": queue, "MessageBody": "x" * TEN_MIB})
    resp = json_request(endpoint, "SendMessage", body=payload)
    assert_json_client_error(resp)


def test_json_wrong_content_type(endpoint, alive):
    resp = json_request(endpoint, "ListQueues", {}, content_type="text/plain")
    assert 400 <= resp.status_code < 500, f"HTTP {resp.status_code}: {resp.content[:300]!r}"
    aws_error_body(resp)


# ------------------------------------------------------------------------------------------------ Query: ugly

def test_query_missing_action(endpoint, alive):
    resp = query_request(endpoint, {"QueueName": "x"})
    assert_query_client_error(resp, {"MissingAction", "InvalidAction"})


def test_query_empty_body(endpoint, alive):
    resp = query_request(endpoint, body=b"")
    assert_query_client_error(resp, {"MissingAction", "InvalidAction"})


@pytest.mark.parametrize("action", ["NoSuchAction", "createqueue", ""])
def test_query_unknown_action(endpoint, action, alive):
    resp = query_request(endpoint, {"Action": action, "QueueName": "x"})
    assert_query_client_error(resp, {"InvalidAction", "MissingAction"})


def test_query_malformed_percent_encoding(endpoint, alive):
    resp = query_request(endpoint, body=b"Action=CreateQueue&Version=2012-11-05&QueueName=bad%ZZname%")
    assert_query_client_error(resp)


def test_query_invalid_utf8_percent_encoded(endpoint, queue, alive):
    body = f"Action=SendMessage&Version=2012-11-05&QueueUrl={requests.utils.quote(queue, safe='')}" \
           f"&MessageBody=%FF%FEbad".encode()
    resp = query_request(endpoint, body=body)
    assert_query_client_error(resp)


def test_query_invalid_utf8_raw_bytes(endpoint, alive):
    resp = query_request(endpoint, body=b"Action=CreateQueue&Version=2012-11-05&QueueName=\xff\xfe")
    assert_query_client_error(resp)


def test_query_ten_mib_body(endpoint, queue, alive):
    body = f"Action=SendMessage&Version=2012-11-05&QueueUrl={requests.utils.quote(queue, safe='')}" \
           f"&MessageBody=".encode() + b"x" * TEN_MIB
    resp = query_request(endpoint, body=body)
    assert_query_client_error(resp)


def test_form_body_with_wrong_content_type(endpoint, alive):
    # Without application/x-www-form-urlencoded the body is not form parameters: there is no Action.
    resp = query_request(endpoint, body=b"Action=ListQueues&Version=2012-11-05", content_type="application/octet-stream")
    assert 400 <= resp.status_code < 500, f"HTTP {resp.status_code}: {resp.content[:300]!r}"
    aws_error_body(resp)


def test_no_content_type_no_target(endpoint, alive):
    resp = raw_post(endpoint + "/", b"hello", {})
    assert 400 <= resp.status_code < 500, f"HTTP {resp.status_code}: {resp.content[:300]!r}"
    aws_error_body(resp)


def test_query_on_unknown_path(endpoint, alive):
    resp = query_request(f"{endpoint}/{ACCOUNT_ID}/missing-{uuid.uuid4().hex}/extra/segments",
                         {"Action": "GetQueueAttributes", "AttributeName.1": "All"})
    assert_query_client_error(resp)


def test_json_with_form_content_type_and_target(endpoint, alive):
    # An X-Amz-Target with a form body: either the JSON protocol rejects the body, or the request is read as Query
    # (then the target's action is missing from the form). Either way a 4xx with an AWS error body.
    resp = raw_post(endpoint + "/", b"QueueName=x", {"X-Amz-Target": "AmazonSQS.CreateQueue", "Content-Type": FORM_CT})
    assert 400 <= resp.status_code < 500, f"HTTP {resp.status_code}: {resp.content[:300]!r}"
    aws_error_body(resp)
