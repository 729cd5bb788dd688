"""Records the wire output of a fixed script of SNS requests, to check that a restructuring of
crates/sluice-sns leaves every response byte-identical.

    SLUICE_BIN=target/debug/sluice python tests/wire/sns_wire_compare.py > after.txt
    diff tests/wire/sns_baseline.txt after.txt

tests/python/test_wire_baseline.py runs the comparison in the test suite.

Starts its own server (in-memory store) and sends raw HTTP requests (success and error cases of every
SNS operation sluice implements, unsupported and unknown actions, routing edge cases, and one SQS
receive of a delivered Notification envelope). Each response is printed as status, content type and
body, with what changes from run to run masked: UUIDs (request ids, message ids, subscription ARNs)
become UUID-1, UUID-2, ... by first appearance, so which responses share an id still shows;
timestamps, FIFO sequence numbers, signatures, receipt handles and MD5s become fixed words; listed
subscriptions are sorted (their order follows their random ARNs).
"""

import http.client
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from sluice_server import SluiceServer  # noqa: E402

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MASKS = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"), "TIMESTAMP"),
    (re.compile(r"<SequenceNumber>\d+</SequenceNumber>"), "<SequenceNumber>SEQ</SequenceNumber>"),
    (re.compile(r"SequenceNumber&quot;:&quot;\d+"), "SequenceNumber&quot;:&quot;SEQ"),
    (re.compile(r"Signature&quot;:&quot;[^&]*"), "Signature&quot;:&quot;SIGNATURE"),
    (re.compile(r"<ReceiptHandle>[^<]*</ReceiptHandle>"), "<ReceiptHandle>HANDLE</ReceiptHandle>"),
    (re.compile(r"<MD5OfBody>[0-9a-f]{32}</MD5OfBody>"), "<MD5OfBody>MD5</MD5OfBody>"),
    (re.compile(r"<MD5OfMessageAttributes>[0-9a-f]{32}</MD5OfMessageAttributes>"),
     "<MD5OfMessageAttributes>MD5</MD5OfMessageAttributes>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "HOST"),
]

SNS = "Version=2010-03-31"
ACCOUNT = "000000000000"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:wire-t"
FIFO_TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:wire-f.fifo"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:wire-q"
FIFO_QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:wire-fq.fifo"


def enc(s):
    return quote(s, safe="")


class Recorder:
    def __init__(self, endpoint):
        u = urlparse(endpoint)
        self.host, self.port = u.hostname, u.port
        self.uuids = {}
        self.out = []

    def mask(self, text):
        def sub(m):
            return self.uuids.setdefault(m.group(0), f"UUID-{len(self.uuids) + 1}")
        text = UUID_RE.sub(sub, text)
        for rx, rep in MASKS:
            text = rx.sub(rep, text)
        # Subscriptions are listed in ARN order, and their ARNs end in a random UUID: compare the
        # members of a list as a sorted set (after masking, so the order is stable).
        def sort_members(m):
            members = re.findall(r"<member>.*?</member>", m.group(2))
            return m.group(1) + "".join(sorted(members)) + m.group(3)
        return re.sub(r"(<Subscriptions>)(.*?)(</Subscriptions>)", sort_members, text)

    def send(self, label, body="", query=None, method="POST", content_type="application/x-www-form-urlencoded"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        path = "/" + (f"?{query}" if query else "")
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(method, path, body=body.encode() if body else None, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        rid = resp.getheader("x-amzn-requestid")
        conn.close()
        self.out.append(f"### {label}\n{resp.status} {resp.getheader('Content-Type')} "
                        f"requestid={'yes' if rid else 'no'}\n{self.mask(text)}\n")
        return text

    def sns(self, label, params):
        return self.send(label, f"{SNS}&{params}")


def first(tag, text):
    m = re.search(f"<{tag}>([^<]*)</{tag}>", text)
    return m.group(1) if m else ""


def script(r):
    # SQS queues the topics deliver to.
    r.send("sqs CreateQueue", "Action=CreateQueue&Version=2012-11-05&QueueName=wire-q")
    r.send("sqs CreateQueue fifo", "Action=CreateQueue&Version=2012-11-05&QueueName=wire-fq.fifo"
           "&Attribute.1.Name=FifoQueue&Attribute.1.Value=true")

    # ---- topics
    r.sns("CreateTopic", "Action=CreateTopic&Name=wire-t&Attributes.entry.1.key=DisplayName"
          "&Attributes.entry.1.value=Orders+%26+%3Cco%3E&Tags.member.1.Key=team&Tags.member.1.Value=a")
    r.sns("CreateTopic again", "Action=CreateTopic&Name=wire-t&Attributes.entry.1.key=DisplayName"
          "&Attributes.entry.1.value=Orders+%26+%3Cco%3E")
    r.sns("CreateTopic different attributes", "Action=CreateTopic&Name=wire-t&Attributes.entry.1.key=DisplayName"
          "&Attributes.entry.1.value=Other")
    r.sns("CreateTopic different tags", "Action=CreateTopic&Name=wire-t&Tags.member.1.Key=team&Tags.member.1.Value=b")
    r.sns("CreateTopic missing Name", "Action=CreateTopic")
    r.sns("CreateTopic bad name", "Action=CreateTopic&Name=bad%20name")
    r.sns("CreateTopic fifo name on standard", "Action=CreateTopic&Name=x.fifo")
    r.sns("CreateTopic fifo without suffix", "Action=CreateTopic&Name=x&Attributes.entry.1.key=FifoTopic"
          "&Attributes.entry.1.value=true")
    r.sns("CreateTopic FifoTopic not bool", "Action=CreateTopic&Name=x&Attributes.entry.1.key=FifoTopic"
          "&Attributes.entry.1.value=maybe")
    r.sns("CreateTopic unknown attribute", "Action=CreateTopic&Name=x&Attributes.entry.1.key=Nope"
          "&Attributes.entry.1.value=1")
    r.sns("CreateTopic CBD on standard", "Action=CreateTopic&Name=x&Attributes.entry.1.key=ContentBasedDeduplication"
          "&Attributes.entry.1.value=true")
    r.sns("CreateTopic bad policy json", "Action=CreateTopic&Name=x&Attributes.entry.1.key=Policy"
          "&Attributes.entry.1.value=%7Bnope")
    r.sns("CreateTopic aws: tag", "Action=CreateTopic&Name=x&Tags.member.1.Key=aws%3Ax&Tags.member.1.Value=v")
    r.sns("CreateTopic fifo", "Action=CreateTopic&Name=wire-f.fifo&Attributes.entry.1.key=FifoTopic"
          "&Attributes.entry.1.value=true&Attributes.entry.2.key=ContentBasedDeduplication"
          "&Attributes.entry.2.value=true")
    r.sns("CreateTopic fifo plain", "Action=CreateTopic&Name=wire-g.fifo&Attributes.entry.1.key=FifoTopic"
          "&Attributes.entry.1.value=true")
    r.sns("ListTopics", "Action=ListTopics")
    r.sns("ListTopics bad token", "Action=ListTopics&NextToken=abc")
    r.sns("ListTopics past the end", "Action=ListTopics&NextToken=50")
    r.sns("GetTopicAttributes", f"Action=GetTopicAttributes&TopicArn={enc(TOPIC)}")
    r.sns("GetTopicAttributes fifo", f"Action=GetTopicAttributes&TopicArn={enc(FIFO_TOPIC)}")
    r.sns("GetTopicAttributes bad arn", "Action=GetTopicAttributes&TopicArn=nope")
    r.sns("GetTopicAttributes missing", f"Action=GetTopicAttributes&TopicArn={enc(TOPIC + 'x')}")
    r.sns("GetTopicAttributes no arn", "Action=GetTopicAttributes")
    r.sns("SetTopicAttributes", f"Action=SetTopicAttributes&TopicArn={enc(TOPIC)}&AttributeName=DisplayName"
          "&AttributeValue=New")
    r.sns("SetTopicAttributes DeliveryPolicy", f"Action=SetTopicAttributes&TopicArn={enc(TOPIC)}"
          "&AttributeName=DeliveryPolicy&AttributeValue="
          + enc('{"http":{"defaultHealthyRetryPolicy":{"numRetries":0,"minDelayTarget":1,"maxDelayTarget":1}}}'))
    r.sns("SetTopicAttributes unknown", f"Action=SetTopicAttributes&TopicArn={enc(TOPIC)}&AttributeName=Nope"
          "&AttributeValue=1")
    r.sns("SetTopicAttributes FifoTopic", f"Action=SetTopicAttributes&TopicArn={enc(TOPIC)}&AttributeName=FifoTopic"
          "&AttributeValue=true")
    r.sns("SetTopicAttributes no name", f"Action=SetTopicAttributes&TopicArn={enc(TOPIC)}")
    r.sns("SetTopicAttributes SignatureVersion", f"Action=SetTopicAttributes&TopicArn={enc(TOPIC)}"
          "&AttributeName=SignatureVersion&AttributeValue=3")
    r.sns("SetTopicAttributes missing topic", f"Action=SetTopicAttributes&TopicArn={enc(TOPIC + 'x')}"
          "&AttributeName=DisplayName&AttributeValue=1")

    # ---- subscriptions
    sub = first("SubscriptionArn", r.sns("Subscribe sqs", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs"
                                        f"&Endpoint={enc(QUEUE)}"))
    r.sns("Subscribe sqs again", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs&Endpoint={enc(QUEUE)}")
    r.sns("Subscribe sqs different attributes", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs"
          f"&Endpoint={enc(QUEUE)}&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true")
    r.sns("Subscribe http", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=http"
          f"&Endpoint={enc('http://127.0.0.1:9/hook')}")
    http_sub = first("SubscriptionArn", r.sns("Subscribe http ReturnSubscriptionArn",
                                              f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=http"
                                              f"&Endpoint={enc('http://127.0.0.1:9/hook')}"
                                              "&ReturnSubscriptionArn=true"))
    r.sns("Subscribe http mismatched endpoint", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=https"
          f"&Endpoint={enc('http://127.0.0.1:9/hook')}")
    r.sns("Subscribe email", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=email&Endpoint=a%40b.c")
    r.sns("Subscribe bogus protocol", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=carrier-pigeon&Endpoint=x")
    r.sns("Subscribe bad sqs arn", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs&Endpoint=nope")
    r.sns("Subscribe fifo queue to standard", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs"
          f"&Endpoint={enc(FIFO_QUEUE)}")
    r.sns("Subscribe fifo queue to fifo", f"Action=Subscribe&TopicArn={enc(FIFO_TOPIC)}&Protocol=sqs"
          f"&Endpoint={enc(FIFO_QUEUE)}&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true")
    r.sns("Subscribe bad filter", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs&Endpoint={enc(QUEUE + '2')}"
          "&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value=" + enc('{"a": "b"}'))
    r.sns("Subscribe bad redrive", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs&Endpoint={enc(QUEUE + '2')}"
          "&Attributes.entry.1.key=RedrivePolicy&Attributes.entry.1.value=" + enc('{"x": 1}'))
    r.sns("Subscribe DeliveryPolicy on sqs", f"Action=Subscribe&TopicArn={enc(TOPIC)}&Protocol=sqs"
          f"&Endpoint={enc(QUEUE + '2')}&Attributes.entry.1.key=DeliveryPolicy&Attributes.entry.1.value=%7B%7D")
    r.sns("Subscribe missing topic", f"Action=Subscribe&TopicArn={enc(TOPIC + 'x')}&Protocol=sqs&Endpoint={enc(QUEUE)}")
    r.sns("Subscribe no protocol", f"Action=Subscribe&TopicArn={enc(TOPIC)}")
    r.sns("Subscribe bad topic arn", "Action=Subscribe&TopicArn=nope&Protocol=sqs")
    r.sns("ListSubscriptions", "Action=ListSubscriptions")
    r.sns("ListSubscriptions bad token", "Action=ListSubscriptions&NextToken=x")
    r.sns("ListSubscriptionsByTopic", f"Action=ListSubscriptionsByTopic&TopicArn={enc(TOPIC)}")
    r.sns("ListSubscriptionsByTopic missing", f"Action=ListSubscriptionsByTopic&TopicArn={enc(TOPIC + 'x')}"
          "&NextToken=x")
    r.sns("ListSubscriptionsByTopic bad token", f"Action=ListSubscriptionsByTopic&TopicArn={enc(TOPIC)}&NextToken=x")
    r.sns("GetSubscriptionAttributes", f"Action=GetSubscriptionAttributes&SubscriptionArn={enc(sub)}")
    r.sns("GetSubscriptionAttributes http", f"Action=GetSubscriptionAttributes&SubscriptionArn={enc(http_sub)}")
    r.sns("GetSubscriptionAttributes bad arn", "Action=GetSubscriptionAttributes&SubscriptionArn=nope")
    r.sns("GetSubscriptionAttributes missing", f"Action=GetSubscriptionAttributes&SubscriptionArn={enc(TOPIC + ':x')}")
    r.sns("SetSubscriptionAttributes filter", f"Action=SetSubscriptionAttributes&SubscriptionArn={enc(sub)}"
          "&AttributeName=FilterPolicy&AttributeValue=" + enc('{"color": ["red", "blue"]}'))
    r.sns("SetSubscriptionAttributes bad filter", f"Action=SetSubscriptionAttributes&SubscriptionArn={enc(sub)}"
          "&AttributeName=FilterPolicy&AttributeValue=" + enc('{"color": "red"}'))
    r.sns("SetSubscriptionAttributes raw bad", f"Action=SetSubscriptionAttributes&SubscriptionArn={enc(sub)}"
          "&AttributeName=RawMessageDelivery&AttributeValue=yes")
    r.sns("SetSubscriptionAttributes DeliveryPolicy sqs", f"Action=SetSubscriptionAttributes"
          f"&SubscriptionArn={enc(sub)}&AttributeName=DeliveryPolicy&AttributeValue=%7B%7D")
    r.sns("SetSubscriptionAttributes unknown", f"Action=SetSubscriptionAttributes&SubscriptionArn={enc(sub)}"
          "&AttributeName=Nope&AttributeValue=1")
    r.sns("SetSubscriptionAttributes missing", f"Action=SetSubscriptionAttributes"
          f"&SubscriptionArn={enc(TOPIC + ':x')}&AttributeName=RawMessageDelivery&AttributeValue=true")
    r.sns("GetSubscriptionAttributes after", f"Action=GetSubscriptionAttributes&SubscriptionArn={enc(sub)}")
    r.sns("ConfirmSubscription bad token", f"Action=ConfirmSubscription&TopicArn={enc(TOPIC)}&Token=nope")
    r.sns("ConfirmSubscription missing topic", f"Action=ConfirmSubscription&TopicArn={enc(TOPIC + 'x')}&Token=nope")
    r.sns("ConfirmSubscription no token", f"Action=ConfirmSubscription&TopicArn={enc(TOPIC)}")
    r.send("ConfirmSubscription GET without Version", method="GET", content_type=None,
           query=f"Action=ConfirmSubscription&TopicArn={enc(TOPIC)}&Token=nope")

    # ---- publish
    r.sns("Publish", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=hello&Subject=Hi"
          "&MessageAttributes.entry.1.Name=color&MessageAttributes.entry.1.Value.DataType=String"
          "&MessageAttributes.entry.1.Value.StringValue=red"
          "&MessageAttributes.entry.2.Name=bin&MessageAttributes.entry.2.Value.DataType=Binary"
          "&MessageAttributes.entry.2.Value.BinaryValue=AAEC")
    r.sns("Publish filtered out", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=nope")
    r.sns("Publish TargetArn json", f"Action=Publish&TargetArn={enc(TOPIC)}&MessageStructure=json&Message="
          + enc('{"default": "d", "sqs": "s"}') + "&MessageAttributes.entry.1.Name=color"
          "&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=blue")
    r.send("sqs ReceiveMessage", "Action=ReceiveMessage&Version=2012-11-05"
           f"&QueueUrl={enc('http://127.0.0.1:1/' + ACCOUNT + '/wire-q')}&MaxNumberOfMessages=10"
           "&MessageAttributeName.1=All")
    r.sns("Publish no arn", "Action=Publish&Message=x")
    r.sns("Publish phone", "Action=Publish&PhoneNumber=%2B15555550100&Message=x")
    r.sns("Publish bad arn", "Action=Publish&TopicArn=nope&Message=x")
    r.sns("Publish missing topic", f"Action=Publish&TopicArn={enc(TOPIC + 'x')}&Message=x")
    r.sns("Publish missing topic bad binary", f"Action=Publish&TopicArn={enc(TOPIC + 'x')}&Message=x"
          "&MessageAttributes.entry.1.Name=b&MessageAttributes.entry.1.Value.DataType=Binary"
          "&MessageAttributes.entry.1.Value.BinaryValue=%21%21")
    r.sns("Publish bad binary", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x"
          "&MessageAttributes.entry.1.Name=b&MessageAttributes.entry.1.Value.DataType=Binary"
          "&MessageAttributes.entry.1.Value.BinaryValue=%21%21")
    r.sns("Publish empty", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=")
    r.sns("Publish bad subject", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x&Subject=")
    r.sns("Publish bad structure", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x&MessageStructure=xml")
    r.sns("Publish bad json", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x&MessageStructure=json")
    r.sns("Publish json no default", f"Action=Publish&TopicArn={enc(TOPIC)}&MessageStructure=json&Message="
          + enc('{"sqs": "s"}'))
    r.sns("Publish bad attribute type", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x"
          "&MessageAttributes.entry.1.Name=n&MessageAttributes.entry.1.Value.DataType=Float"
          "&MessageAttributes.entry.1.Value.StringValue=1")
    r.sns("Publish bad number", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x"
          "&MessageAttributes.entry.1.Name=n&MessageAttributes.entry.1.Value.DataType=Number"
          "&MessageAttributes.entry.1.Value.StringValue=abc")
    r.sns("Publish bad attribute name", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x"
          "&MessageAttributes.entry.1.Name=aws.x&MessageAttributes.entry.1.Value.DataType=String"
          "&MessageAttributes.entry.1.Value.StringValue=1")
    r.sns("Publish dedup on standard", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=x&MessageDeduplicationId=d")
    r.sns("Publish too long", f"Action=Publish&TopicArn={enc(TOPIC)}&Message=" + "x" * 262145)
    r.sns("Publish fifo", f"Action=Publish&TopicArn={enc(FIFO_TOPIC)}&Message=f1&MessageGroupId=g")
    r.sns("Publish fifo no group", f"Action=Publish&TopicArn={enc(FIFO_TOPIC)}&Message=f1")
    r.sns("Publish fifo bad group", f"Action=Publish&TopicArn={enc(FIFO_TOPIC)}&Message=f1&MessageGroupId=a%20b")
    r.sns("Publish fifo no dedup", f"Action=Publish&TopicArn={enc(FIFO_TOPIC.replace('wire-f', 'wire-g'))}"
          "&Message=f1&MessageGroupId=g")
    batch = f"Action=PublishBatch&TopicArn={enc(TOPIC)}"
    r.sns("PublishBatch", batch + "".join(
        f"&PublishBatchRequestEntries.member.{i}.Id=e{i}&PublishBatchRequestEntries.member.{i}.Message=m{i}"
        for i in range(1, 4)))
    r.sns("PublishBatch partial", batch
          + "&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=m"
          + "&PublishBatchRequestEntries.member.2.Id=b&PublishBatchRequestEntries.member.2.Message="
          + "&PublishBatchRequestEntries.member.3.Id=c&PublishBatchRequestEntries.member.3.Message=m"
          + "&PublishBatchRequestEntries.member.3.Subject=%0A")
    r.sns("PublishBatch empty", batch)
    r.sns("PublishBatch too many", batch + "".join(
        f"&PublishBatchRequestEntries.member.{i}.Id=e{i}&PublishBatchRequestEntries.member.{i}.Message=m"
        for i in range(1, 12)))
    r.sns("PublishBatch bad id", batch + "&PublishBatchRequestEntries.member.1.Id=a.b"
          "&PublishBatchRequestEntries.member.1.Message=m")
    r.sns("PublishBatch same ids", batch + "".join(
        f"&PublishBatchRequestEntries.member.{i}.Id=e&PublishBatchRequestEntries.member.{i}.Message=m"
        for i in range(1, 3)))
    r.sns("PublishBatch too long", batch + "".join(
        f"&PublishBatchRequestEntries.member.{i}.Id=e{i}&PublishBatchRequestEntries.member.{i}.Message="
        + "x" * 100000 for i in range(1, 4)))
    r.sns("PublishBatch bad binary", batch + "&PublishBatchRequestEntries.member.1.Id=a"
          "&PublishBatchRequestEntries.member.1.Message=m"
          "&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=b"
          "&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType=Binary"
          "&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.BinaryValue=%21")
    r.sns("PublishBatch missing topic", f"Action=PublishBatch&TopicArn={enc(TOPIC + 'x')}")
    r.sns("PublishBatch fifo", f"Action=PublishBatch&TopicArn={enc(FIFO_TOPIC)}"
          + "&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=m1"
          + "&PublishBatchRequestEntries.member.1.MessageGroupId=g"
          + "&PublishBatchRequestEntries.member.2.Id=b&PublishBatchRequestEntries.member.2.Message=m2")
    r.send("sqs ReceiveMessage fifo", "Action=ReceiveMessage&Version=2012-11-05"
           f"&QueueUrl={enc('http://127.0.0.1:1/' + ACCOUNT + '/wire-fq.fifo')}&MaxNumberOfMessages=10"
           "&MessageAttributeName.1=All&AttributeName.1=MessageGroupId")

    # ---- tags
    r.sns("TagResource", f"Action=TagResource&ResourceArn={enc(TOPIC)}&Tags.member.1.Key=env"
          "&Tags.member.1.Value=prod&Tags.member.2.Key=a%3Cb&Tags.member.2.Value=%26")
    r.sns("ListTagsForResource", f"Action=ListTagsForResource&ResourceArn={enc(TOPIC)}")
    r.sns("UntagResource", f"Action=UntagResource&ResourceArn={enc(TOPIC)}&TagKeys.member.1=env")
    r.sns("ListTagsForResource after", f"Action=ListTagsForResource&ResourceArn={enc(TOPIC)}")
    r.sns("TagResource missing", f"Action=TagResource&ResourceArn={enc(TOPIC + 'x')}&Tags.member.1.Key=k"
          "&Tags.member.1.Value=v")
    r.sns("UntagResource missing", f"Action=UntagResource&ResourceArn={enc(TOPIC + 'x')}&TagKeys.member.1=k")
    r.sns("ListTagsForResource missing", f"Action=ListTagsForResource&ResourceArn={enc(TOPIC + 'x')}")
    r.sns("ListTagsForResource no arn", "Action=ListTagsForResource")
    r.sns("TagResource too many", f"Action=TagResource&ResourceArn={enc(TOPIC)}" + "".join(
        f"&Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=v" for i in range(1, 52)))
    r.sns("TagResource aws:", f"Action=TagResource&ResourceArn={enc(TOPIC)}&Tags.member.1.Key=aws%3Ak"
          "&Tags.member.1.Value=v")

    # ---- unsubscribe, delete, routing
    r.sns("Unsubscribe", f"Action=Unsubscribe&SubscriptionArn={enc(sub)}")
    r.sns("Unsubscribe again", f"Action=Unsubscribe&SubscriptionArn={enc(sub)}")
    r.sns("Unsubscribe bad arn", "Action=Unsubscribe&SubscriptionArn=nope")
    r.sns("Unsubscribe no arn", "Action=Unsubscribe")
    r.send("Unsubscribe GET without Version", method="GET", content_type=None,
           query=f"Action=Unsubscribe&SubscriptionArn={enc(http_sub)}")
    r.sns("DeleteTopic", f"Action=DeleteTopic&TopicArn={enc(TOPIC)}")
    r.sns("DeleteTopic again", f"Action=DeleteTopic&TopicArn={enc(TOPIC)}")
    r.sns("DeleteTopic bad arn", "Action=DeleteTopic&TopicArn=nope")
    r.sns("ListSubscriptions after", "Action=ListSubscriptions")
    r.sns("AddPermission (unsupported)", f"Action=AddPermission&TopicArn={enc(FIFO_TOPIC)}")
    r.sns("SetSMSAttributes (unsupported)", "Action=SetSMSAttributes")
    r.sns("Unknown action", "Action=Frobnicate")
    r.sns("Missing action", "Name=x")
    r.sns("Lower-case action", "Action=listtopics")
    r.send("GET ListTopics in query", method="GET", content_type=None, query=f"Action=ListTopics&{SNS}")
    r.send("POST query string, text/plain body", body="Action=CreateTopic&Name=ignored", content_type="text/plain",
           query=f"Action=ListTopics&{SNS}")
    r.send("JSON-looking body", body="{\"Action\": \"ListTopics\"}", content_type="application/x-www-form-urlencoded",
           query=SNS)


def run():
    """The masked answers, one text."""
    with tempfile.TemporaryDirectory() as d:
        server = SluiceServer(d, log_name="sns-wire-compare",
                              args=["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", ":memory:"])
        server.start()
        try:
            r = Recorder(server.endpoint)
            script(r)
        finally:
            server.stop()
    return "\n".join(r.out)


if __name__ == "__main__":
    sys.stdout.write(run())
