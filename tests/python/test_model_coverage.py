"""Coverage of the SQS service model itself.

1. Routing: every operation of the model botocore ships (the test venv's botocore/data/sqs/2012-11-05/
   service-2.json.gz) is answered by the server over both wire protocols: the AWS JSON protocol (a boto3 client
   with client-side validation off, sending an empty input) and the Query protocol (Action=<op>, nothing else).
   A validation error (MissingParameter, QueueDoesNotExist, ...) or a success is fine; an unknown-action answer
   (InvalidAction / UnknownOperationException), UnsupportedOperation or a 5xx is not.

2. Modeled errors: ERRORS maps every (operation, error shape) pair the model lists to a callable that makes the
   server produce exactly that error, or to a Skip with the reason it cannot be produced without AWS
   infrastructure. test_error_table_matches_model keeps the table in step with the model.

3. Queue lifecycle: re-creating a queue right after deleting it.
"""

import base64
import gzip
import json
import uuid
from pathlib import Path

import botocore
import pytest
from botocore.exceptions import ClientError

from sqs_helpers import (ACCOUNT_ID, expect_error, make_client, parse_xml, query_request, queue_arn, strip_ns,
                         xml_error)

MODEL_PATH = Path(botocore.__file__).resolve().parent / "data" / "sqs" / "2012-11-05" / "service-2.json.gz"
MODEL = json.loads(gzip.decompress(MODEL_PATH.read_bytes()))
OPERATIONS = sorted(MODEL["operations"])
MODEL_ERRORS = {(op, e["shape"]) for op, o in MODEL["operations"].items() for e in o.get("errors", [])}

# Answers that mean "this server does not know / does not implement the operation".
NOT_ROUTED = {"InvalidAction", "UnknownOperationException", "UnknownOperation", "MissingAction",
              "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "NotImplemented"}


def snake(op):
    return botocore.xform_name(op)


# ------------------------------------------------------------------------------------------------ routing

@pytest.fixture(scope="module")
def raw_sqs(endpoint):
    return make_client(endpoint, parameter_validation=False)


def test_model_has_the_expected_operations():
    assert len(OPERATIONS) >= 23, OPERATIONS
    for op in ("CreateQueue", "SendMessage", "StartMessageMoveTask", "AddPermission", "ListDeadLetterSourceQueues"):
        assert op in OPERATIONS


@pytest.mark.parametrize("op", OPERATIONS)
def test_json_protocol_routes(raw_sqs, op):
    try:
        resp = getattr(raw_sqs, snake(op))()
    except ClientError as e:
        err = e.response.get("Error", {})
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        codes = {err.get("Code"), err.get("QueryErrorCode")}
        assert not codes & NOT_ROUTED, f"{op} is not routed over JSON: HTTP {status} {err}"
        assert 400 <= status < 500, f"{op}: HTTP {status} {err}"
    else:
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize("op", OPERATIONS)
def test_query_protocol_routes(endpoint, op):
    resp = query_request(endpoint, {"Action": op})
    root = parse_xml(resp)
    if resp.status_code == 200:
        assert strip_ns(root.tag) == f"{op}Response", resp.text[:300]
        return
    assert 400 <= resp.status_code < 500, f"{op}: HTTP {resp.status_code}: {resp.text[:300]}"
    _, code, msg = xml_error(resp)
    assert code not in NOT_ROUTED, f"{op} is not routed over the Query protocol: {code} {msg}"


# ------------------------------------------------------------------------------------------------ modeled errors

class Skip:
    def __init__(self, reason):
        self.reason = reason


class Ctx:
    """What the error callables get: the client, a helper to make queues, a URL of no queue, a scratch queue."""

    def __init__(self, sqs, endpoint, make_queue, unique_name):
        self.sqs = sqs
        self.make_queue = make_queue
        self.unique_name = unique_name
        self.missing = f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}"
        self._queue = None

    @property
    def queue(self):
        if self._queue is None:
            self._queue = self.make_queue()
        return self._queue

    @property
    def arn(self):
        return queue_arn(self.sqs, self.queue)


@pytest.fixture
def ctx(sqs, endpoint, make_queue, unique_name):
    return Ctx(sqs, endpoint, make_queue, unique_name)


# Generic skips: errors that need AWS infrastructure (or are deprecated) and cannot happen here.
INFRA = {
    "InvalidAddress": Skip("InvalidAddress: the accountId/endpoint is invalid for the AWS partition; sluice serves "
                           "one account on one endpoint"),
    "InvalidSecurity": Skip("InvalidSecurity: request not over HTTPS or not SigV4-signed; sluice answers an "
                            "unsigned or badly signed request with AWS's authentication errors (MissingAuthenticationToken, "
                            "SignatureDoesNotMatch: tests/python/test_sigv4.py) and serves HTTP or HTTPS as configured"),
    "RequestThrottled": Skip("RequestThrottled: AWS-side request-rate quotas; sluice does not throttle"),
    "InvalidIdFormat": Skip("InvalidIdFormat: deprecated ('receipt handle isn't valid for the current version'); "
                            "malformed handles are ReceiptHandleIsInvalid"),
}
for _kms in ("KmsDisabled", "KmsInvalidState", "KmsNotFound", "KmsOptInRequired", "KmsThrottled", "KmsAccessDenied",
             "KmsInvalidKeyUsage"):
    INFRA[_kms] = Skip(f"{_kms}: needs AWS KMS; sluice records KMS attributes but encrypts nothing")

NO_TRIGGER = Skip("UnsupportedOperation: the model lists it for every operation, but AWS documents (and was "
                  "recorded giving) it only for list-typed message attribute values on SendMessage")
EIGHT_ACTIONS = ["SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes",
                 "GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue"]


def task_handle(task_id, source_arn):
    return base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": source_arn}).encode()).decode()


def deleted_recently(c):
    name = c.unique_name("-deleted")
    url = c.sqs.create_queue(QueueName=name)["QueueUrl"]
    c.sqs.delete_queue(QueueUrl=url)
    c.sqs.create_queue(QueueName=name)


def name_exists(c):
    name = c.unique_name()
    c.make_queue(name=name, VisibilityTimeout=40)
    c.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "41"})


def purge_twice(c):
    c.sqs.purge_queue(QueueUrl=c.queue)
    c.sqs.purge_queue(QueueUrl=c.queue)


def batch_errors(method, entry):
    """The four batch-shape errors of `method`; entry(i, id) builds one entry."""
    def call(c, entries):
        return getattr(c.sqs, method)(QueueUrl=c.queue, Entries=entries)
    return {
        "TooManyEntriesInBatchRequest": lambda c: call(c, [entry(i, f"e{i}") for i in range(11)]),
        "EmptyBatchRequest": lambda c: call(c, []),
        "BatchEntryIdsNotDistinct": lambda c: call(c, [entry(0, "same"), entry(1, "same")]),
        "InvalidBatchEntryId": lambda c: call(c, [entry(0, "not valid!")]),
        "QueueDoesNotExist": lambda c: getattr(c.sqs, method)(QueueUrl=c.missing, Entries=[entry(0, "a")]),
    }


ERRORS = {
    "AddPermission": {
        "QueueDoesNotExist": lambda c: c.sqs.add_permission(QueueUrl=c.missing, Label="l",
                                                            AWSAccountIds=["111122223333"], Actions=["SendMessage"]),
        "OverLimit": lambda c: c.sqs.add_permission(QueueUrl=c.queue, Label="eight", AWSAccountIds=["111122223333"],
                                                    Actions=EIGHT_ACTIONS),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "CancelMessageMoveTask": {
        "ResourceNotFoundException": lambda c: c.sqs.cancel_message_move_task(
            TaskHandle=task_handle(str(uuid.uuid4()), c.arn)),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "ChangeMessageVisibility": {
        "MessageNotInflight": Skip("MessageNotInflight: AWS answers 200 for a handle whose visibility expired and "
                                   "InvalidParameterValue for a deleted message; no recorded request produces it"),
        "ReceiptHandleIsInvalid": lambda c: c.sqs.change_message_visibility(QueueUrl=c.queue, ReceiptHandle="garbage",
                                                                            VisibilityTimeout=5),
        "QueueDoesNotExist": lambda c: c.sqs.change_message_visibility(QueueUrl=c.missing, ReceiptHandle="garbage",
                                                                       VisibilityTimeout=5),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "ChangeMessageVisibilityBatch": dict(
        batch_errors("change_message_visibility_batch",
                     lambda i, id_: {"Id": id_, "ReceiptHandle": f"handle-{i}", "VisibilityTimeout": 5}),
        UnsupportedOperation=NO_TRIGGER),
    "CreateQueue": {
        "QueueDeletedRecently": deleted_recently,
        "QueueNameExists": name_exists,
        "InvalidAttributeName": lambda c: c.sqs.create_queue(QueueName=c.unique_name(), Attributes={"Bogus": "1"}),
        "InvalidAttributeValue": lambda c: c.sqs.create_queue(QueueName=c.unique_name(),
                                                              Attributes={"VisibilityTimeout": "-1"}),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "DeleteMessage": {
        "ReceiptHandleIsInvalid": lambda c: c.sqs.delete_message(QueueUrl=c.queue, ReceiptHandle="garbage"),
        "QueueDoesNotExist": lambda c: c.sqs.delete_message(QueueUrl=c.missing, ReceiptHandle="garbage"),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "DeleteMessageBatch": dict(
        batch_errors("delete_message_batch", lambda i, id_: {"Id": id_, "ReceiptHandle": f"handle-{i}"}),
        UnsupportedOperation=NO_TRIGGER),
    "DeleteQueue": {
        "QueueDoesNotExist": lambda c: c.sqs.delete_queue(QueueUrl=c.missing),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "GetQueueAttributes": {
        "InvalidAttributeName": lambda c: c.sqs.get_queue_attributes(QueueUrl=c.queue, AttributeNames=["Bogus"]),
        "QueueDoesNotExist": lambda c: c.sqs.get_queue_attributes(QueueUrl=c.missing, AttributeNames=["All"]),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "GetQueueUrl": {
        "QueueDoesNotExist": lambda c: c.sqs.get_queue_url(QueueName=c.unique_name("-missing")),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "ListDeadLetterSourceQueues": {
        "QueueDoesNotExist": lambda c: c.sqs.list_dead_letter_source_queues(QueueUrl=c.missing),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "ListMessageMoveTasks": {
        "ResourceNotFoundException": lambda c: c.sqs.list_message_move_tasks(SourceArn=c.arn + "-missing"),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "ListQueueTags": {
        "QueueDoesNotExist": lambda c: c.sqs.list_queue_tags(QueueUrl=c.missing),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "ListQueues": {
        "UnsupportedOperation": NO_TRIGGER,
    },
    "PurgeQueue": {
        "QueueDoesNotExist": lambda c: c.sqs.purge_queue(QueueUrl=c.missing),
        "PurgeQueueInProgress": purge_twice,
        "UnsupportedOperation": NO_TRIGGER,
    },
    "ReceiveMessage": {
        "QueueDoesNotExist": lambda c: c.sqs.receive_message(QueueUrl=c.missing),
        "OverLimit": Skip("OverLimit: needs ~120,000 in-flight messages on one queue; far too slow for this suite"),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "RemovePermission": {
        "QueueDoesNotExist": lambda c: c.sqs.remove_permission(QueueUrl=c.missing, Label="l"),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "SendMessage": {
        "InvalidMessageContents": lambda c: c.sqs.send_message(QueueUrl=c.queue, MessageBody="nul \x00 byte"),
        "QueueDoesNotExist": lambda c: c.sqs.send_message(QueueUrl=c.missing, MessageBody="x"),
        # Recorded AWS answer for list-typed attribute values (reserved in the model, not supported).
        "UnsupportedOperation": lambda c: c.sqs.send_message(QueueUrl=c.queue, MessageBody="x", MessageAttributes={
            "l": {"DataType": "String", "StringListValues": ["a", "b"]}}),
    },
    "SendMessageBatch": dict(
        batch_errors("send_message_batch", lambda i, id_: {"Id": id_, "MessageBody": f"body-{i}"}),
        BatchRequestTooLong=lambda c: c.sqs.send_message_batch(QueueUrl=c.queue, Entries=[
            {"Id": f"e{i}", "MessageBody": "b" * 600_000} for i in range(2)]),
        UnsupportedOperation=Skip("UnsupportedOperation: for a batch, list-typed attribute values are an entry "
                                  "failure or a request failure; AWS's choice is not recorded")),
    "SetQueueAttributes": {
        "InvalidAttributeName": lambda c: c.sqs.set_queue_attributes(QueueUrl=c.queue, Attributes={"Bogus": "1"}),
        "InvalidAttributeValue": lambda c: c.sqs.set_queue_attributes(QueueUrl=c.queue,
                                                                      Attributes={"DelaySeconds": "901"}),
        "QueueDoesNotExist": lambda c: c.sqs.set_queue_attributes(QueueUrl=c.missing,
                                                                  Attributes={"DelaySeconds": "1"}),
        "OverLimit": Skip("OverLimit on SetQueueAttributes: no documented or recorded trigger"),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "StartMessageMoveTask": {
        "ResourceNotFoundException": lambda c: c.sqs.start_message_move_task(SourceArn=c.arn + "-missing"),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "TagQueue": {
        "QueueDoesNotExist": lambda c: c.sqs.tag_queue(QueueUrl=c.missing, Tags={"k": "v"}),
        "UnsupportedOperation": NO_TRIGGER,
    },
    "UntagQueue": {
        "QueueDoesNotExist": lambda c: c.sqs.untag_queue(QueueUrl=c.missing, TagKeys=["k"]),
        "UnsupportedOperation": NO_TRIGGER,
    },
}

# Every model pair not listed explicitly must be an infrastructure error.
for _op, _err in MODEL_ERRORS:
    if _err in INFRA:
        ERRORS.setdefault(_op, {}).setdefault(_err, INFRA[_err])

CASES = sorted((op, err) for op in ERRORS for err in ERRORS[op])


def test_error_table_matches_model():
    table = {(op, err) for op, err in CASES}
    assert not MODEL_ERRORS - table, f"model errors without an entry: {sorted(MODEL_ERRORS - table)}"
    assert not table - MODEL_ERRORS, f"entries the model does not list: {sorted(table - MODEL_ERRORS)}"


def test_error_table_produces_most_errors():
    produced = [(op, err) for op, err in CASES if not isinstance(ERRORS[op][err], Skip)]
    shapes = {err for _, err in produced}
    assert len(produced) >= 40, produced
    for shape in ("QueueDoesNotExist", "QueueDeletedRecently", "QueueNameExists", "PurgeQueueInProgress",
                  "ResourceNotFoundException", "OverLimit", "BatchRequestTooLong", "InvalidMessageContents",
                  "ReceiptHandleIsInvalid", "UnsupportedOperation"):
        assert shape in shapes, f"no request in the table produces {shape}"


@pytest.mark.parametrize("op,err", CASES, ids=[f"{op}-{err}" for op, err in CASES])
def test_modeled_error(ctx, op, err):
    entry = ERRORS[op][err]
    if isinstance(entry, Skip):
        pytest.skip(entry.reason)
    with expect_error(err):
        entry(ctx)


# ------------------------------------------------------------------------------------------------ queue lifecycle

def test_recreate_right_after_delete_is_queue_deleted_recently(sqs, make_queue, unique_name):
    """Decision, from the API reference: DeleteQueue "When you delete a queue, you must wait at least 60 seconds
    before creating a queue with the same name", CreateQueue "If you delete a queue, you must wait at least 60
    seconds before creating a queue with the same name", and the modeled CreateQueue error QueueDeletedRecently
    ("You must wait 60 seconds after deleting a queue before you can create another with the same name.", which
    AWS was recorded answering to an immediate re-create). So within 60 s of DeleteQueue, CreateQueue with that
    name is refused with QueueDeletedRecently (HTTP 400, Query code
    AWS.SimpleQueueService.QueueDeletedRecently), whatever the attributes; other names are unaffected. Waiting
    the 60 s out is too slow for this suite and is not tested."""
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with expect_error("QueueDeletedRecently"):
        sqs.create_queue(QueueName=name)
    with expect_error("QueueDeletedRecently"):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "10"})
    other = make_queue(name=name + "-other")
    assert other.endswith(name + "-other")


def test_recreate_right_after_delete_over_query(sqs, endpoint, unique_name):
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    resp = query_request(endpoint, {"Action": "CreateQueue", "QueueName": name})
    typ, code, _ = xml_error(resp)
    assert (resp.status_code, typ, code) == (400, "Sender", "AWS.SimpleQueueService.QueueDeletedRecently")


def test_fifo_queue_deleted_recently(sqs, unique_name):
    name = unique_name(".fifo")
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with expect_error("QueueDeletedRecently"):
        sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})
