"""A fixed script of requests whose answers must not change when the code is restructured (issue 22).

    python tests/wire/wire_script.py record [BASELINE]   # run against $SLUICE_BIN, write the answers
    python tests/wire/wire_script.py compare [BASELINE]  # run again, exit 1 on any difference

BASELINE defaults to tests/wire/baseline.json. The requests cover both SQS protocols (JSON 1.0 and Query) and SNS,
successes and errors. What differs between two runs by design is masked: request ids, message ids and other UUIDs,
receipt handles, timestamps, FIFO sequence numbers and task handles. Everything else - status, content type,
`x-amzn-query-error` and the body byte for byte - must be identical. tests/python/test_wire_baseline.py runs the
comparison in the test suite; record again (and review the diff) when an answer changes on purpose.
"""

import http.client
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
    """(label, protocol, action or None, payload) in order; `payload` is a dict (JSON body / form fields;
    for "raw", the method, path, query string, content type and body as sent)."""
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
    # --- The Query protocol's form rules, as raw requests (method, path, query string, content type, body): encoding
    # faults, duplicate names, query string vs body, list indexes, routing by Version, for both APIs.
    def raw(label, body=b"", query=None, ct=FORM_CT, method="POST", path="/"):
        add((label, "raw", None, {"method": method, "path": path, "query": query, "ct": ct, "body": body}))
    qa = f"QueueUrl=http%3A%2F%2Fx%2F{ACCOUNT}%2Fwire-a"
    raw("form bad escape in query", query="Action=ListQueues&x=%zz")
    raw("form bad escape in body", b"Action=ListQueues&x=%zz")
    raw("form bad escape at the end", b"Action=ListQueues&x=%4")
    raw("form not utf-8", b"Action=ListQueues&x=%ff%fe")
    raw("form not utf-8 then bad escape", b"Action=ListQueues&x=%ff&y=%zz")
    raw("form text/plain body", b"Action=ListQueues", ct="text/plain")
    raw("form text/plain body, bad query", b"x", query="%zz", ct="text/plain")
    raw("form no content type", b"Action=ListQueues&QueueNamePrefix=wire-", ct=None)
    raw("form body wins over query", b"QueueNamePrefix=wire-", query="Action=ListQueues&QueueNamePrefix=zz")
    raw("form last duplicate wins", b"Action=ListQueues&QueueNamePrefix=zz&QueueNamePrefix=wire-")
    raw("form pair without =", b"Action=ListQueues&QueueNamePrefix&&")
    raw("form plus and escapes", b"Action=GetQueueUrl&QueueName=wire%2Da+")
    raw("form index 0", f"Action=GetQueueAttributes&{qa}&AttributeName.0=All".encode())
    raw("form index past i32", f"Action=GetQueueAttributes&{qa}&AttributeName.2147483648=All".encode())
    raw("form sparse list", f"Action=GetQueueAttributes&{qa}&AttributeName.3=QueueArn&AttributeName.1=DelaySeconds".encode())
    raw("form escaped dot", f"Action=GetQueueAttributes&{qa}&AttributeName%2E1=QueueArn".encode())
    raw("form sparse entries", f"Action=ChangeMessageVisibilityBatch&{qa}&ChangeMessageVisibilityBatchRequestEntry.2.Id=b"
        "&ChangeMessageVisibilityBatchRequestEntry.2.ReceiptHandle=x&ChangeMessageVisibilityBatchRequestEntry.7.Id=a"
        "&ChangeMessageVisibilityBatchRequestEntry.7.ReceiptHandle=y".encode())
    raw("form bad int in entry", f"Action=ChangeMessageVisibilityBatch&{qa}&ChangeMessageVisibilityBatchRequestEntry.1.Id=a"
        "&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=x&ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=z".encode())
    raw("form queue url as path", b"Action=GetQueueAttributes&AttributeName.1=QueueArn", path=f"/{ACCOUNT}/wire-a")
    raw("form get with action", query="Action=ListQueues&QueueNamePrefix=wire-", method="GET", ct=None)
    raw("form get unknown path", query="x=1", method="GET", ct=None, path="/nope")
    raw("form get unknown path bad escape", query="x=%zz", method="GET", ct=None, path="/nope")
    raw("form empty post", b"")
    t = f"arn%3Aaws%3Asns%3Aus-east-1%3A{ACCOUNT}%3Awire-raw"
    raw("sns form create", b"Action=CreateTopic&Version=2010-03-31&Name=wire-raw")
    raw("sns form bad escape read on", b"Action=ListTopics&Version=2010-03-31&x=%zz")
    raw("sns form not utf-8 read on", b"Action=CreateTopic&Version=2010-03-31&Name=wire-%ff")
    raw("sns form version in query, text/plain body", b"Action=GetTopicAttributes&TopicArn=" + t.encode(),
        query="Action=ListTopics&Version=2010-03-31", ct="text/plain")
    raw("sns form version in a text/plain body", b"Action=ListTopics&Version=2010-03-31", ct="text/plain")
    raw("sns form json-looking body", b'{"Action":"ListTopics"}', query="Version=2010-03-31", ct=None)
    raw("sns form body version wins", b"Action=ListQueues&Version=2012-11-05", query="Version=2010-03-31")
    raw("sns form tags with a gap", f"Action=TagResource&Version=2010-03-31&ResourceArn={t}&Tags.member.1.Key=a"
        "&Tags.member.1.Value=1&Tags.member.3.Key=c&Tags.member.3.Value=3&Tags.member.0.Key=z&Tags.member.0.Value=0".encode())
    raw("sns form tags listed", f"Action=ListTagsForResource&Version=2010-03-31&ResourceArn={t}".encode())
    raw("sns form untag dup keys", f"Action=UntagResource&Version=2010-03-31&ResourceArn={t}&TagKeys.member.1=zz"
        "&TagKeys.member.1=a".encode())
    raw("sns form tags after untag", f"Action=ListTagsForResource&Version=2010-03-31&ResourceArn={t}".encode())
    raw("sns form batch with a gap", f"Action=PublishBatch&Version=2010-03-31&TopicArn={t}"
        "&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=m"
        "&PublishBatchRequestEntries.member.2.Id=b&PublishBatchRequestEntries.member.2.Message=n"
        "&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Name=x"
        "&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.DataType=Binary"
        "&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.BinaryValue=%21%21"
        "&PublishBatchRequestEntries.member.4.Id=d&PublishBatchRequestEntries.member.4.Message=o".encode())
    raw("sns form attributes", f"Action=SetTopicAttributes&Version=2010-03-31&TopicArn={t}&AttributeName=DisplayName"
        "&AttributeValue=a+b%26c".encode())
    raw("sns form attributes read", f"Action=GetTopicAttributes&Version=2010-03-31&TopicArn={t}".encode())
    raw("sns form missing entry key", f"Action=Subscribe&Version=2010-03-31&TopicArn={t}&Protocol=sqs"
        f"&Endpoint=arn%3Aaws%3Asqs%3Aus-east-1%3A{ACCOUNT}%3Awire-dlq&Attributes.entry.1.value=true".encode())
    raw("sns form confirm without version", query="Action=ConfirmSubscription&TopicArn=x&Token=y", method="GET", ct=None)
    raw("sns form unsubscribe without version", b"Action=Unsubscribe&SubscriptionArn=nope")
    raw("sns form missing action", b"Version=2010-03-31&Name=x")
    raw("sns form delete", f"Action=DeleteTopic&Version=2010-03-31&TopicArn={t}".encode())
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


class RawAnswer:
    """What `run` reads of an answer, from http.client (requests would re-quote a bad escape such as %zz)."""

    def __init__(self, resp):
        self.status_code = resp.status
        self.headers = resp.headers
        self.text = resp.read().decode("utf-8", "replace")


def send_raw(base, payload):
    """The request exactly as written: method, path and query string, content type (if any), body."""
    target = payload["path"] + (f"?{payload['query']}" if payload["query"] is not None else "")
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
    try:
        headers = {"Content-Type": payload["ct"]} if payload["ct"] else {}
        headers["Content-Length"] = str(len(payload["body"]))
        conn.request(payload["method"], target, body=payload["body"], headers=headers)
        return RawAnswer(conn.getresponse())
    finally:
        conn.close()


def run(binary_env=None):
    with tempfile.TemporaryDirectory(prefix="sluice-wire-") as data:
        server = SluiceServer(data, log_name="wire-script")
        server.start()
        try:
            base = server.endpoint
            out = []
            for label, proto, action, payload in script(base):
                if proto == "raw":
                    r = send_raw(base, payload)
                elif proto == "json":
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
