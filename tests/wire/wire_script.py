"""A fixed script of requests whose answers must not change when the code is restructured (issue 22).

    python tests/wire/wire_script.py record [BASELINE]   # run against $SLUICE_BIN, write the answers
    python tests/wire/wire_script.py compare [BASELINE]  # run again, exit 1 on any difference

BASELINE defaults to tests/wire/baseline.json. The requests cover both SQS protocols (JSON 1.0 and Query) and SNS,
successes and errors. What differs between two runs by design is masked: request ids, message ids and other UUIDs,
receipt handles, timestamps, FIFO sequence numbers and task handles. Everything else - status, content type,
`x-amzn-query-error` and the body byte for byte - must be identical. tests/python/test_wire_baseline.py runs the
comparison in the test suite; record again (and review the diff) when an answer changes on purpose.
"""

import json
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

import requests  # noqa: E402

from sluice_server import SluiceServer  # noqa: E402

JSON_CT = "application/x-amz-json-1.0"
FORM_CT = "application/x-www-form-urlencoded"
ACCOUNT = "000000000000"


def script(base):
    """(label, protocol, action or None, payload) in order; `payload` is a dict (JSON body / form fields)."""
    q = f"{base}/{ACCOUNT}"
    s = []
    add = s.append
    # --- SQS over JSON 1.0
    add(("create", "json", "CreateQueue", {"QueueName": "wire-a", "Attributes": {"VisibilityTimeout": "0"}, "tags": {"t": "1"}}))
    add(("create fifo", "json", "CreateQueue", {"QueueName": "wire-f.fifo", "Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "true"}}))
    add(("create dlq", "json", "CreateQueue", {"QueueName": "wire-dlq"}))
    add(("create bad name", "json", "CreateQueue", {"QueueName": "bad name"}))
    add(("create exists", "json", "CreateQueue", {"QueueName": "wire-a", "Attributes": {"VisibilityTimeout": "5"}}))
    add(("get url", "json", "GetQueueUrl", {"QueueName": "wire-a"}))
    add(("get url missing", "json", "GetQueueUrl", {"QueueName": "nope"}))
    add(("list", "json", "ListQueues", {"QueueNamePrefix": "wire-"}))
    add(("attrs", "json", "GetQueueAttributes", {"QueueUrl": f"{q}/wire-a", "AttributeNames": ["VisibilityTimeout", "DelaySeconds", "QueueArn"]}))
    add(("attrs bad", "json", "GetQueueAttributes", {"QueueUrl": f"{q}/wire-a", "AttributeNames": ["Foobar"]}))
    add(("set attrs", "json", "SetQueueAttributes", {"QueueUrl": f"{q}/wire-a", "Attributes": {"DelaySeconds": "0"}}))
    add(("set bad", "json", "SetQueueAttributes", {"QueueUrl": f"{q}/wire-a", "Attributes": {"VisibilityTimeout": "x"}}))
    attrs = {"Hello": {"DataType": "String", "StringValue": "There"}, "Bin": {"DataType": "Binary", "BinaryValue": "AAEC"},
             "Num": {"DataType": "Number", "StringValue": "1.5"}}
    add(("send", "json", "SendMessage", {"QueueUrl": f"{q}/wire-a", "MessageBody": "hello <&> \"wire\"", "MessageAttributes": attrs}))
    add(("send empty", "json", "SendMessage", {"QueueUrl": f"{q}/wire-a", "MessageBody": ""}))
    add(("send bad attr", "json", "SendMessage", {"QueueUrl": f"{q}/wire-a", "MessageBody": "x", "MessageAttributes": {"a": {"DataType": "Nope", "StringValue": "v"}}}))
    add(("send batch", "json", "SendMessageBatch", {"QueueUrl": f"{q}/wire-a", "Entries": [
        {"Id": "1", "MessageBody": "one"}, {"Id": "2", "MessageBody": "two", "DelaySeconds": 901}]}))
    add(("send batch dup ids", "json", "SendMessageBatch", {"QueueUrl": f"{q}/wire-a", "Entries": [{"Id": "1", "MessageBody": "a"}, {"Id": "1", "MessageBody": "b"}]}))
    add(("send fifo", "json", "SendMessage", {"QueueUrl": f"{q}/wire-f.fifo", "MessageBody": "f1", "MessageGroupId": "g"}))
    add(("receive", "json", "ReceiveMessage", {"QueueUrl": f"{q}/wire-a", "MaxNumberOfMessages": 1, "MessageAttributeNames": ["All"],
                                              "AttributeNames": ["ApproximateReceiveCount"]}))
    add(("receive fifo", "json", "ReceiveMessage", {"QueueUrl": f"{q}/wire-f.fifo", "AttributeNames": ["MessageGroupId"]}))
    add(("receive bad max", "json", "ReceiveMessage", {"QueueUrl": f"{q}/wire-a", "MaxNumberOfMessages": 11}))
    add(("delete garbage", "json", "DeleteMessage", {"QueueUrl": f"{q}/wire-a", "ReceiptHandle": "garbage"}))
    add(("delete batch garbage", "json", "DeleteMessageBatch", {"QueueUrl": f"{q}/wire-a", "Entries": [{"Id": "x", "ReceiptHandle": "garbage"}]}))
    add(("visibility garbage", "json", "ChangeMessageVisibility", {"QueueUrl": f"{q}/wire-a", "ReceiptHandle": "garbage", "VisibilityTimeout": 5}))
    add(("visibility batch empty", "json", "ChangeMessageVisibilityBatch", {"QueueUrl": f"{q}/wire-a", "Entries": []}))
    add(("tag", "json", "TagQueue", {"QueueUrl": f"{q}/wire-a", "Tags": {"k": "v"}}))
    add(("untag", "json", "UntagQueue", {"QueueUrl": f"{q}/wire-a", "TagKeys": ["t"]}))
    add(("tags", "json", "ListQueueTags", {"QueueUrl": f"{q}/wire-a"}))
    add(("add permission", "json", "AddPermission", {"QueueUrl": f"{q}/wire-a", "Label": "p", "AWSAccountIds": ["111122223333"], "Actions": ["SendMessage"]}))
    add(("remove permission missing", "json", "RemovePermission", {"QueueUrl": f"{q}/wire-a", "Label": "nope"}))
    add(("redrive", "json", "SetQueueAttributes", {"QueueUrl": f"{q}/wire-a", "Attributes": {
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:wire-dlq", "maxReceiveCount": 3})}}))
    add(("dlq sources", "json", "ListDeadLetterSourceQueues", {"QueueUrl": f"{q}/wire-dlq"}))
    add(("move tasks", "json", "ListMessageMoveTasks", {"SourceArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:wire-dlq"}))
    add(("move task bad", "json", "StartMessageMoveTask", {"SourceArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:wire-a"}))
    add(("cancel bad", "json", "CancelMessageMoveTask", {"TaskHandle": "foobared"}))
    add(("purge", "json", "PurgeQueue", {"QueueUrl": f"{q}/wire-dlq"}))
    add(("purge again", "json", "PurgeQueue", {"QueueUrl": f"{q}/wire-dlq"}))
    add(("unknown op", "json", "Nope", {}))
    add(("bad json", "json", "ListQueues", "{not json"))
    # --- SQS over the Query protocol
    add(("q create", "query", None, {"Action": "CreateQueue", "QueueName": "wire-q", "Attribute.1.Name": "DelaySeconds", "Attribute.1.Value": "0"}))
    add(("q list", "query", None, {"Action": "ListQueues", "QueueNamePrefix": "wire-q"}))
    add(("q send", "query", None, {"Action": "SendMessage", "QueueUrl": f"{q}/wire-q", "MessageBody": "q <body>",
                                   "MessageAttribute.1.Name": "A", "MessageAttribute.1.Value.DataType": "String",
                                   "MessageAttribute.1.Value.StringValue": "b"}))
    add(("q send batch", "query", None, {"Action": "SendMessageBatch", "QueueUrl": f"{q}/wire-q",
                                         "SendMessageBatchRequestEntry.1.Id": "a", "SendMessageBatchRequestEntry.1.MessageBody": "x",
                                         "SendMessageBatchRequestEntry.2.Id": "b", "SendMessageBatchRequestEntry.2.MessageBody": "\x00"}))
    add(("q receive", "query", None, {"Action": "ReceiveMessage", "QueueUrl": f"{q}/wire-q", "MaxNumberOfMessages": "1",
                                      "MessageAttributeName.1": "All", "AttributeName.1": "SenderId"}))
    add(("q attrs", "query", None, {"Action": "GetQueueAttributes", "QueueUrl": f"{q}/wire-q", "AttributeName.1": "All"}))
    add(("q tags", "query", None, {"Action": "ListQueueTags", "QueueUrl": f"{q}/wire-a"}))
    add(("q missing queue", "query", None, {"Action": "GetQueueAttributes", "QueueUrl": f"{q}/nope"}))
    add(("q missing param", "query", None, {"Action": "SendMessage", "QueueUrl": f"{q}/wire-q"}))
    add(("q unknown action", "query", None, {"Action": "FooBar"}))
    add(("q no action", "query", None, {"QueueUrl": f"{q}/wire-q"}))
    add(("q bad int", "query", None, {"Action": "ReceiveMessage", "QueueUrl": f"{q}/wire-q", "MaxNumberOfMessages": "ten"}))
    add(("q delete queue", "query", None, {"Action": "DeleteQueue", "QueueUrl": f"{q}/wire-q"}))
    # --- SNS (Query protocol, Version 2010-03-31)
    sns = lambda action, **kw: dict({"Action": action, "Version": "2010-03-31"}, **kw)  # noqa: E731
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:wire-t"
    add(("sns create topic", "sns", None, sns("CreateTopic", Name="wire-t")))
    add(("sns create bad", "sns", None, sns("CreateTopic", Name="bad name")))
    add(("sns list topics", "sns", None, sns("ListTopics")))
    add(("sns topic attrs", "sns", None, sns("GetTopicAttributes", TopicArn=topic)))
    add(("sns subscribe", "sns", None, sns("Subscribe", TopicArn=topic, Protocol="sqs",
                                          Endpoint=f"arn:aws:sqs:us-east-1:{ACCOUNT}:wire-dlq",
                                          **{"Attributes.entry.1.key": "RawMessageDelivery", "Attributes.entry.1.value": "true"})))
    add(("sns list subs", "sns", None, sns("ListSubscriptionsByTopic", TopicArn=topic)))
    add(("sns publish", "sns", None, sns("Publish", TopicArn=topic, Message="hi",
                                        **{"MessageAttributes.entry.1.Name": "a", "MessageAttributes.entry.1.Value.DataType": "String",
                                           "MessageAttributes.entry.1.Value.StringValue": "b"})))
    add(("sns publish batch", "sns", None, sns("PublishBatch", TopicArn=topic,
                                              **{"PublishBatchRequestEntries.member.1.Id": "1",
                                                 "PublishBatchRequestEntries.member.1.Message": "m1"})))
    add(("sns publish missing topic", "sns", None, sns("Publish", TopicArn=topic + "x", Message="hi")))
    add(("sns publish no message", "sns", None, sns("Publish", TopicArn=topic)))
    add(("sns tag", "sns", None, sns("TagResource", ResourceArn=topic, **{"Tags.member.1.Key": "k", "Tags.member.1.Value": "v"})))
    add(("sns list tags", "sns", None, sns("ListTagsForResource", ResourceArn=topic)))
    add(("sns unknown", "sns", None, sns("Nope")))
    add(("sns delete topic", "sns", None, sns("DeleteTopic", TopicArn=topic)))
    add(("sqs receive sns delivery", "json", "ReceiveMessage", {"QueueUrl": f"{q}/wire-dlq", "MaxNumberOfMessages": 10,
                                                                  "MessageAttributeNames": ["All"]}))
    return s


MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r'("ReceiptHandle":")[^"]*'), r"\1HANDLE"),
    (re.compile(r"(<ReceiptHandle>)[^<]*"), r"\1HANDLE"),
    (re.compile(r'("TaskHandle":")[^"]*'), r"\1TASK"),
    (re.compile(r'("SequenceNumber":")\d+'), r"\1SEQ"),
    (re.compile(r"(<SequenceNumber>)\d+"), r"\1SEQ"),
    (re.compile(r"\b1[0-9]{9}([0-9]{3})?\b"), "TIME"),
]


def mask(text):
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


def run(binary_env=None):
    with tempfile.TemporaryDirectory(prefix="sluice-wire-") as data:
        server = SluiceServer(data, log_name="wire-script")
        server.start()
        try:
            base = server.endpoint
            out = []
            for label, proto, action, payload in script(base):
                if proto == "json":
                    body = payload if isinstance(payload, str) else json.dumps(payload)
                    r = requests.post(base + "/", data=body.encode(), timeout=30,
                                      headers={"Content-Type": JSON_CT, "X-Amz-Target": f"AmazonSQS.{action}"})
                else:
                    r = requests.post(base + "/", data=urlencode(payload).encode(), timeout=30,
                                      headers={"Content-Type": FORM_CT})
                out.append({
                    "label": label,
                    "status": r.status_code,
                    "content_type": r.headers.get("Content-Type"),
                    "query_error": r.headers.get("x-amzn-query-error"),
                    "body": mask(r.text.replace(base, "http://ENDPOINT")),
                })
            return out
        finally:
            server.stop()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "compare"
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "baseline.json"
    got = run()
    if mode == "record":
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
        print(f"recorded {len(got)} answers to {path}")
        return 0
    want = json.loads(path.read_text())
    diffs = [(w["label"], w, g) for w, g in zip(want, got) if w != g]
    if len(want) != len(got):
        print(f"{len(want)} answers recorded, {len(got)} now")
        return 1
    for label, w, g in diffs:
        print(f"--- {label}\n  recorded: {json.dumps(w)[:600]}\n  now:      {json.dumps(g)[:600]}")
    print(f"{len(got) - len(diffs)} of {len(got)} answers identical")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
