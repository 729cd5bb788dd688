"""Queue management actions over the AWS JSON protocol (boto3): CreateQueue, GetQueueUrl, ListQueues, DeleteQueue,
GetQueueAttributes, SetQueueAttributes, TagQueue/UntagQueue/ListQueueTags.

Assertions follow the SQS API reference (service model botocore/data/sqs/2012-11-05/service-2.json).
"""

import time

import pytest

from sqs_helpers import ACCOUNT_ID, REGION, expect_error, expect_one_of

ALL_STANDARD_ATTRIBUTES = {
    "QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp", "VisibilityTimeout",
    "MaximumMessageSize", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds",
}

DEFAULTS = {
    "VisibilityTimeout": "30",
    "MaximumMessageSize": "1048576",  # 1 MiB since August 2025 (was 262144)
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
}


def attrs(sqs, url, *names):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"]).get("Attributes", {})


# ------------------------------------------------------------------------------------------------ CreateQueue

def test_create_queue_url_and_arn_format(sqs, endpoint, make_queue, unique_name):
    name = unique_name()
    url = make_queue(name=name)
    assert url == f"{endpoint}/{ACCOUNT_ID}/{name}"
    assert attrs(sqs, url, "QueueArn")["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def test_create_queue_same_name_same_attributes_returns_same_url(sqs, make_queue, unique_name):
    name = unique_name()
    url = make_queue(name=name, VisibilityTimeout=45, DelaySeconds=2)
    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45", "DelaySeconds": "2"})
    assert again["QueueUrl"] == url
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_create_queue_same_name_no_attributes_twice_returns_same_url(sqs, make_queue, unique_name):
    name = unique_name()
    url = make_queue(name=name)
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == url


def test_create_queue_same_name_different_attributes_is_queue_name_exists(sqs, make_queue, unique_name):
    name = unique_name()
    make_queue(name=name, VisibilityTimeout=45)
    with expect_error("QueueNameExists"):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})


def test_create_queue_names_are_case_sensitive(sqs, make_queue, unique_name):
    name = unique_name("-Case")
    lower = make_queue(name=name.lower())
    upper = make_queue(name=name.upper())
    assert lower != upper
    assert sqs.get_queue_url(QueueName=name.upper())["QueueUrl"] == upper


def test_create_queue_longest_valid_name(sqs, make_queue, unique_name):
    name = (unique_name() + "_-" + "x" * 80)[:80]
    assert len(name) == 80
    url = make_queue(name=name)
    assert url.endswith("/" + name)


@pytest.mark.parametrize("name", [
    "x" * 81,
    "has space",
    "dot.in.name",
    "slash/name",
    "colon:name",
    "star*",
    "ümlaut",
    "name.fifo",  # a standard queue may not end in .fifo
], ids=["81-chars", "space", "dots", "slash", "colon", "star", "non-ascii", "fifo-suffix"])
def test_create_queue_invalid_name(sqs, name):
    with expect_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=name)


def test_create_queue_empty_name(sqs):
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName="")
    expect_one_of(ei.value, ["InvalidParameterValue", "MissingParameter"])


@pytest.mark.parametrize("attr,value", [
    ("VisibilityTimeout", "-1"),
    ("VisibilityTimeout", "43201"),
    ("VisibilityTimeout", "abc"),
    ("VisibilityTimeout", "1.5"),
    ("DelaySeconds", "901"),
    ("DelaySeconds", "-1"),
    ("MaximumMessageSize", "1023"),
    ("MaximumMessageSize", "1048577"),
    ("MessageRetentionPeriod", "59"),
    ("MessageRetentionPeriod", "1209601"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
    ("ReceiveMessageWaitTimeSeconds", "-1"),
])
def test_create_queue_invalid_attribute_value(sqs, unique_name, attr, value):
    with expect_error("InvalidAttributeValue"):
        sqs.create_queue(QueueName=unique_name(), Attributes={attr: value})


@pytest.mark.parametrize("attr,value", [
    ("VisibilityTimeout", "0"),
    ("VisibilityTimeout", "43200"),
    ("DelaySeconds", "900"),
    ("MaximumMessageSize", "1024"),
    ("MaximumMessageSize", "1048576"),
    ("MessageRetentionPeriod", "60"),
    ("MessageRetentionPeriod", "1209600"),
    ("ReceiveMessageWaitTimeSeconds", "20"),
])
def test_create_queue_attribute_bounds_accepted(sqs, make_queue, attr, value):
    url = make_queue(**{attr: value})
    assert attrs(sqs, url, attr)[attr] == value


def test_create_queue_unknown_attribute_is_invalid_attribute_name(sqs, unique_name):
    with expect_error("InvalidAttributeName"):
        sqs.create_queue(QueueName=unique_name(), Attributes={"NoSuchAttribute": "1"})


def test_create_queue_with_attributes_applies_them(sqs, make_queue):
    url = make_queue(VisibilityTimeout=45, DelaySeconds=3, MaximumMessageSize=2048, MessageRetentionPeriod=120,
                     ReceiveMessageWaitTimeSeconds=5)
    a = attrs(sqs, url)
    assert (a["VisibilityTimeout"], a["DelaySeconds"], a["MaximumMessageSize"], a["MessageRetentionPeriod"],
            a["ReceiveMessageWaitTimeSeconds"]) == ("45", "3", "2048", "120", "5")


def test_create_queue_with_tags(sqs, make_queue):
    url = make_queue(tags={"team": "core", "env": "test"})
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags") == {"team": "core", "env": "test"}


def test_tag_untag_list_queue_tags(sqs, queue):
    assert sqs.list_queue_tags(QueueUrl=queue).get("Tags", {}) == {}
    sqs.tag_queue(QueueUrl=queue, Tags={"a": "1", "b": "2"})
    sqs.tag_queue(QueueUrl=queue, Tags={"b": "3"})
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"a": "1", "b": "3"}
    sqs.untag_queue(QueueUrl=queue, TagKeys=["a"])
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"b": "3"}


# ------------------------------------------------------------------------------------------------ GetQueueUrl

def test_get_queue_url(sqs, make_queue, unique_name):
    name = unique_name()
    url = make_queue(name=name)
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url


def test_get_queue_url_unknown_queue(sqs, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.get_queue_url(QueueName=unique_name("-missing"))


# ------------------------------------------------------------------------------------------------ ListQueues

def test_list_queues_prefix(sqs, make_queue, unique_name):
    base = unique_name()
    urls = {make_queue(name=f"{base}-a{i}") for i in range(3)}
    other = make_queue(name=f"{base}-b0")
    got = set(sqs.list_queues(QueueNamePrefix=f"{base}-a").get("QueueUrls", []))
    assert got == urls
    assert other in sqs.list_queues(QueueNamePrefix=base)["QueueUrls"]
    assert sqs.list_queues(QueueNamePrefix=f"{base}-zzz").get("QueueUrls", []) == []


def test_list_queues_prefix_is_case_sensitive(sqs, make_queue, unique_name):
    base = unique_name()
    url = make_queue(name=base + "-lower")
    assert sqs.list_queues(QueueNamePrefix=base.upper()).get("QueueUrls", []) == []
    assert sqs.list_queues(QueueNamePrefix=base)["QueueUrls"] == [url]


def test_list_queues_without_prefix_includes_new_queue(sqs, queue):
    assert queue in sqs.list_queues().get("QueueUrls", [])


def test_list_queues_paging(sqs, make_queue, unique_name):
    base = unique_name()
    urls = {make_queue(name=f"{base}-{i:02d}") for i in range(7)}
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"QueueNamePrefix": base, "MaxResults": 3}
        if token:
            kwargs["NextToken"] = token
        page = sqs.list_queues(**kwargs)
        got = page.get("QueueUrls", [])
        assert len(got) <= 3
        seen += got
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10, "paging does not end"
    assert sorted(seen) == sorted(urls), "each queue exactly once across pages"
    assert pages == 3


def test_list_queues_max_results_without_more_has_no_next_token(sqs, make_queue, unique_name):
    base = unique_name()
    make_queue(name=base + "-1")
    page = sqs.list_queues(QueueNamePrefix=base, MaxResults=5)
    assert len(page["QueueUrls"]) == 1
    assert not page.get("NextToken")


@pytest.mark.parametrize("max_results", [0, 1001])
def test_list_queues_max_results_out_of_range(sqs, max_results):
    with expect_error("InvalidParameterValue"):
        sqs.list_queues(MaxResults=max_results)


# ------------------------------------------------------------------------------------------------ DeleteQueue

def test_delete_queue(sqs, unique_name):
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="doomed")
    sqs.delete_queue(QueueUrl=url)
    with expect_error("QueueDoesNotExist"):
        sqs.get_queue_url(QueueName=name)
    assert url not in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    with expect_error("QueueDoesNotExist"):
        sqs.send_message(QueueUrl=url, MessageBody="x")
    with expect_error("QueueDoesNotExist"):
        sqs.receive_message(QueueUrl=url)
    with expect_error("QueueDoesNotExist"):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])


def test_delete_unknown_queue(sqs, endpoint, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.delete_queue(QueueUrl=f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}")


# ------------------------------------------------------------------------------------------------ GetQueueAttributes

def test_get_queue_attributes_all_defaults(sqs, make_queue, unique_name):
    before = int(time.time())
    name = unique_name()
    url = make_queue(name=name)
    after = int(time.time())
    a = attrs(sqs, url, "All")
    missing = ALL_STANDARD_ATTRIBUTES - set(a)
    assert not missing, f"All is missing {missing}: {a}"
    for k, v in DEFAULTS.items():
        assert a[k] == v, f"default {k}: expected {v}, got {a[k]}"
    assert a["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
    for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed"):
        assert a[k] == "0"
    for k in ("CreatedTimestamp", "LastModifiedTimestamp"):
        assert a[k].isdigit(), f"{k} should be epoch seconds, got {a[k]!r}"
        assert before - 2 <= int(a[k]) <= after + 2, f"{k}={a[k]} not in [{before}, {after}]"
    assert "FifoQueue" not in a or a["FifoQueue"] == "false"


@pytest.mark.parametrize("name", sorted(ALL_STANDARD_ATTRIBUTES))
def test_get_queue_attributes_single_name(sqs, queue, name):
    a = attrs(sqs, queue, name)
    assert set(a) == {name}, f"asked for {name}, got {a}"


def test_get_queue_attributes_several_names(sqs, queue):
    a = attrs(sqs, queue, "VisibilityTimeout", "QueueArn", "DelaySeconds")
    assert set(a) == {"VisibilityTimeout", "QueueArn", "DelaySeconds"}


def test_get_queue_attributes_no_names_returns_nothing(sqs, queue):
    # AttributeNames omitted: the API reference says no attributes are returned.
    assert sqs.get_queue_attributes(QueueUrl=queue).get("Attributes", {}) == {}


def test_get_queue_attributes_invalid_name(sqs, queue):
    with expect_error("InvalidAttributeName"):
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["NoSuchAttribute"])


def test_get_queue_attributes_unknown_queue(sqs, endpoint, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.get_queue_attributes(QueueUrl=f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}",
                                 AttributeNames=["All"])


def test_approximate_counts(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="visible-1")
    sqs.send_message(QueueUrl=queue, MessageBody="visible-2")
    sqs.send_message(QueueUrl=queue, MessageBody="delayed", DelaySeconds=30)
    a = attrs(sqs, queue, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed")
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"],
            a["ApproximateNumberOfMessagesDelayed"]) == ("2", "0", "1"), a
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=30)["Messages"]
    assert len(got) == 1
    a = attrs(sqs, queue, "All")
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"],
            a["ApproximateNumberOfMessagesDelayed"]) == ("1", "1", "1"), a
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"])
    a = attrs(sqs, queue, "All")
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"],
            a["ApproximateNumberOfMessagesDelayed"]) == ("1", "0", "1"), a


# ------------------------------------------------------------------------------------------------ SetQueueAttributes

def test_set_queue_attributes(sqs, make_queue):
    url = make_queue()
    created = attrs(sqs, url, "CreatedTimestamp", "LastModifiedTimestamp")
    time.sleep(1.1)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": "45", "DelaySeconds": "2", "MaximumMessageSize": "4096",
        "MessageRetentionPeriod": "60", "ReceiveMessageWaitTimeSeconds": "3"})
    a = attrs(sqs, url, "All")
    assert (a["VisibilityTimeout"], a["DelaySeconds"], a["MaximumMessageSize"], a["MessageRetentionPeriod"],
            a["ReceiveMessageWaitTimeSeconds"]) == ("45", "2", "4096", "60", "3")
    assert a["CreatedTimestamp"] == created["CreatedTimestamp"]
    assert int(a["LastModifiedTimestamp"]) > int(created["LastModifiedTimestamp"]), \
        "LastModifiedTimestamp should move on SetQueueAttributes"


@pytest.mark.parametrize("attr,value", [
    ("VisibilityTimeout", "43201"),
    ("DelaySeconds", "901"),
    ("MaximumMessageSize", "1023"),
    ("MaximumMessageSize", "1048577"),
    ("MessageRetentionPeriod", "59"),
    ("MessageRetentionPeriod", "1209601"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
    ("VisibilityTimeout", "ten"),
])
def test_set_queue_attributes_invalid_value(sqs, queue, attr, value):
    with expect_error("InvalidAttributeValue"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={attr: value})
    # nothing changed
    assert attrs(sqs, queue, attr)[attr] == DEFAULTS[attr]


def test_set_queue_attributes_retention_bounds(sqs, queue):
    # Retention cannot be waited out cheaply; check the bounds only.
    for ok in ("60", "1209600"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"MessageRetentionPeriod": ok})
        assert attrs(sqs, queue, "MessageRetentionPeriod")["MessageRetentionPeriod"] == ok


@pytest.mark.parametrize("attr", ["NoSuchAttribute", "QueueArn", "ApproximateNumberOfMessages", "CreatedTimestamp"])
def test_set_queue_attributes_unknown_or_read_only_name(sqs, queue, attr):
    with expect_error("InvalidAttributeName"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={attr: "1"})


def test_set_queue_attributes_unknown_queue(sqs, endpoint, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.set_queue_attributes(QueueUrl=f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}",
                                 Attributes={"VisibilityTimeout": "10"})


def test_set_visibility_timeout_applies_to_later_receives(sqs, queue):
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})
    sqs.send_message(QueueUrl=queue, MessageBody="vt")
    assert len(sqs.receive_message(QueueUrl=queue).get("Messages", [])) == 1
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    time.sleep(1.3)
    assert len(sqs.receive_message(QueueUrl=queue).get("Messages", [])) == 1
