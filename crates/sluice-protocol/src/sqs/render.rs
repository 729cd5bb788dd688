//! Writes a [`Reply`] or an [`ApiError`] in either wire format: AWS JSON 1.0, or the Query
//! protocol's XML (`<XResponse><XResult>…</XResult><ResponseMetadata>…`).

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use sluice_engine::message::{Attributes, ReceivedMessage, SendResult};

use sluice_engine::TaskRecord;

use super::dispatch::{Failure, Reply};
use super::error::ApiError;
use crate::xml::el;

const XMLNS: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

/// A move task as ListMessageMoveTasks lists it: the handle only while it runs.
fn task_fields(t: &TaskRecord) -> Vec<(&'static str, Value)> {
    let mut f = Vec::new();
    if t.status == "RUNNING" {
        f.push(("TaskHandle", json!(t.handle)));
    }
    f.push(("Status", json!(t.status)));
    f.push(("SourceArn", json!(t.source_arn)));
    if let Some(d) = &t.destination_arn {
        f.push(("DestinationArn", json!(d)));
    }
    if let Some(r) = t.max_per_second {
        f.push(("MaxNumberOfMessagesPerSecond", json!(r)));
    }
    f.push(("ApproximateNumberOfMessagesMoved", json!(t.moved)));
    f.push(("ApproximateNumberOfMessagesToMove", json!(t.to_move)));
    if let Some(r) = &t.failure_reason {
        f.push(("FailureReason", json!(r)));
    }
    f.push(("StartedTimestamp", json!(t.started_ms)));
    f
}

/// A send result as JSON, borrowed: the hot replies are written straight into the output buffer,
/// without building a `serde_json::Value` tree (that was 17-26% of the profile).
#[derive(Serialize)]
struct SendResultJson<'a> {
    #[serde(rename = "Id", skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "MessageId")]
    message_id: &'a str,
    #[serde(rename = "MD5OfMessageBody")]
    md5_of_body: &'a str,
    #[serde(rename = "MD5OfMessageAttributes", skip_serializing_if = "Option::is_none")]
    md5_of_attributes: Option<&'a str>,
    #[serde(rename = "MD5OfMessageSystemAttributes", skip_serializing_if = "Option::is_none")]
    md5_of_system_attributes: Option<&'a str>,
    #[serde(rename = "SequenceNumber", skip_serializing_if = "Option::is_none")]
    sequence_number: Option<&'a str>,
}

impl<'a> SendResultJson<'a> {
    fn new(id: Option<&'a str>, r: &'a SendResult) -> Self {
        SendResultJson {
            id,
            message_id: &r.message_id,
            md5_of_body: &r.md5_of_body,
            md5_of_attributes: r.md5_of_attributes.as_deref(),
            md5_of_system_attributes: r.md5_of_system_attributes.as_deref(),
            sequence_number: r.sequence_number.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct FailureJson<'a> {
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "SenderFault")]
    sender_fault: bool,
    #[serde(rename = "Code")]
    code: &'static str,
    #[serde(rename = "Message")]
    message: String,
}

fn failures(failed: &[Failure]) -> Vec<FailureJson<'_>> {
    failed
        .iter()
        .map(|f| FailureJson {
            id: &f.id,
            sender_fault: f.error.wire().sender_fault,
            code: f.error.entry_code(),
            message: f.error.to_string(),
        })
        .collect()
}

#[derive(Serialize)]
struct SendBatchJson<'a> {
    #[serde(rename = "Successful")]
    successful: Vec<SendResultJson<'a>>,
    #[serde(rename = "Failed")]
    failed: Vec<FailureJson<'a>>,
}

/// Message attributes as JSON: `{name: {"StringValue"|"BinaryValue", "DataType"}}`.
struct AttributesJson<'a>(&'a Attributes);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Value<'a> {
            #[serde(rename = "StringValue", skip_serializing_if = "Option::is_none")]
            string_value: Option<&'a str>,
            #[serde(rename = "BinaryValue", skip_serializing_if = "Option::is_none")]
            binary_value: Option<String>,
            #[serde(rename = "DataType")]
            data_type: &'a str,
        }
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, v) in self.0 {
            let value = Value {
                string_value: v.string_value.as_deref(),
                binary_value: v.binary_value.as_ref().map(|b| BASE64.encode(b)),
                data_type: &v.data_type,
            };
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct MessageJson<'a> {
    #[serde(rename = "MessageId")]
    message_id: &'a str,
    #[serde(rename = "ReceiptHandle")]
    receipt_handle: &'a str,
    #[serde(rename = "MD5OfBody")]
    md5_of_body: &'a str,
    #[serde(rename = "Body")]
    body: &'a str,
    #[serde(rename = "Attributes", skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    attributes: &'a std::collections::BTreeMap<String, String>,
    #[serde(rename = "MD5OfMessageAttributes", skip_serializing_if = "Option::is_none")]
    md5_of_attributes: Option<&'a str>,
    #[serde(rename = "MessageAttributes", skip_serializing_if = "Option::is_none")]
    message_attributes: Option<AttributesJson<'a>>,
}

#[derive(Serialize)]
struct MessagesJson<'a> {
    #[serde(rename = "Messages")]
    messages: Vec<MessageJson<'a>>,
}

fn to_vec(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    if serde_json::to_writer(&mut out, value).is_err() {
        return b"{}".to_vec();
    }
    out
}

/// The JSON 1.0 body of a successful reply.
pub fn json_reply(reply: &Reply) -> Vec<u8> {
    match reply {
        Reply::SendMessage(r) => return to_vec(&SendResultJson::new(None, r)),
        Reply::SendMessageBatch { successful, failed } => {
            return to_vec(&SendBatchJson {
                successful: successful.iter().map(|(id, r)| SendResultJson::new(Some(id), r)).collect(),
                failed: failures(failed),
            })
        }
        Reply::Messages(msgs) if !msgs.is_empty() => {
            return to_vec(&MessagesJson {
                messages: msgs
                    .iter()
                    .map(|m| MessageJson {
                        message_id: &m.message_id,
                        receipt_handle: &m.receipt_handle,
                        md5_of_body: &m.md5_of_body,
                        body: &m.body,
                        attributes: &m.system_attributes,
                        md5_of_attributes: m.md5_of_attributes.as_deref(),
                        message_attributes: m.md5_of_attributes.as_ref().map(|_| AttributesJson(&m.attributes)),
                    })
                    .collect(),
            })
        }
        _ => {}
    }
    let value = match reply {
        Reply::QueueUrl(url) => json!({ "QueueUrl": url }),
        Reply::ListQueues { urls, next_token } => {
            let mut o = Map::new();
            if !urls.is_empty() {
                o.insert("QueueUrls".into(), json!(urls));
            }
            if let Some(t) = next_token {
                o.insert("NextToken".into(), json!(t));
            }
            Value::Object(o)
        }
        Reply::Empty => json!({}),
        Reply::Attributes(attrs) => {
            let map: Map<String, Value> = attrs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            if map.is_empty() {
                json!({})
            } else {
                json!({ "Attributes": map })
            }
        }
        // Written above without a Value tree; an empty receive answers `{}`.
        Reply::SendMessage(_) | Reply::SendMessageBatch { .. } | Reply::Messages(_) => json!({}),
        Reply::BatchIds { successful, failed } => {
            let ok: Vec<Value> = successful.iter().map(|id| json!({ "Id": id })).collect();
            json!({ "Successful": ok, "Failed": serde_json::to_value(failures(failed)).unwrap_or_default() })
        }
        Reply::Tags(tags) => {
            if tags.is_empty() {
                json!({})
            } else {
                json!({ "Tags": tags })
            }
        }
        Reply::DeadLetterSourceQueues { urls, next_token } => {
            let mut o = Map::new();
            o.insert("queueUrls".into(), json!(urls));
            if let Some(t) = next_token {
                o.insert("NextToken".into(), json!(t));
            }
            Value::Object(o)
        }
        Reply::TaskHandle(h) => json!({ "TaskHandle": h }),
        Reply::MessagesMoved(n) => json!({ "ApproximateNumberOfMessagesMoved": n }),
        Reply::MoveTasks(tasks) => {
            let results: Vec<Value> = tasks
                .iter()
                .map(|t| Value::Object(task_fields(t).into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
                .collect();
            json!({ "Results": results })
        }
    };
    serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
}

/// The JSON 1.0 body of an error.
pub fn json_error(e: &ApiError) -> Vec<u8> {
    let w = e.wire();
    serde_json::to_vec(&json!({ "__type": w.json_type, "message": e.to_string() })).unwrap_or_default()
}

fn send_result_xml(out: &mut String, r: &SendResult) {
    el(out, "MessageId", &r.message_id);
    el(out, "MD5OfMessageBody", &r.md5_of_body);
    if let Some(m) = &r.md5_of_attributes {
        el(out, "MD5OfMessageAttributes", m);
    }
    if let Some(m) = &r.md5_of_system_attributes {
        el(out, "MD5OfMessageSystemAttributes", m);
    }
    if let Some(n) = &r.sequence_number {
        el(out, "SequenceNumber", n);
    }
}

fn failures_xml(out: &mut String, failed: &[Failure]) {
    for f in failed {
        out.push_str("<BatchResultErrorEntry>");
        el(out, "Id", &f.id);
        el(out, "SenderFault", if f.error.wire().sender_fault { "true" } else { "false" });
        el(out, "Code", f.error.entry_code());
        el(out, "Message", &f.error.to_string());
        out.push_str("</BatchResultErrorEntry>");
    }
}

fn message_xml(out: &mut String, m: &ReceivedMessage) {
    out.push_str("<Message>");
    el(out, "MessageId", &m.message_id);
    el(out, "ReceiptHandle", &m.receipt_handle);
    el(out, "MD5OfBody", &m.md5_of_body);
    el(out, "Body", &m.body);
    for (k, v) in &m.system_attributes {
        out.push_str("<Attribute>");
        el(out, "Name", k);
        el(out, "Value", v);
        out.push_str("</Attribute>");
    }
    if let Some(md5) = &m.md5_of_attributes {
        el(out, "MD5OfMessageAttributes", md5);
    }
    for (name, v) in &m.attributes {
        out.push_str("<MessageAttribute>");
        el(out, "Name", name);
        out.push_str("<Value>");
        if let Some(s) = &v.string_value {
            el(out, "StringValue", s);
        }
        if let Some(b) = &v.binary_value {
            el(out, "BinaryValue", &BASE64.encode(b));
        }
        el(out, "DataType", &v.data_type);
        out.push_str("</Value></MessageAttribute>");
    }
    out.push_str("</Message>");
}

/// The Query-protocol XML body of a successful reply to `action`.
pub fn xml_reply(action: &str, reply: &Reply, request_id: &str) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "<?xml version=\"1.0\"?><{action}Response xmlns=\"{XMLNS}\">");
    let mut result = String::new();
    match reply {
        Reply::QueueUrl(url) => el(&mut result, "QueueUrl", url),
        Reply::ListQueues { urls, next_token } => {
            for u in urls {
                el(&mut result, "QueueUrl", u);
            }
            if let Some(t) = next_token {
                el(&mut result, "NextToken", t);
            }
        }
        Reply::Empty => {}
        Reply::Attributes(attrs) => {
            for (k, v) in attrs {
                result.push_str("<Attribute>");
                el(&mut result, "Name", k);
                el(&mut result, "Value", v);
                result.push_str("</Attribute>");
            }
        }
        Reply::SendMessage(r) => send_result_xml(&mut result, r),
        Reply::SendMessageBatch { successful, failed } => {
            for (id, r) in successful {
                result.push_str("<SendMessageBatchResultEntry>");
                el(&mut result, "Id", id);
                send_result_xml(&mut result, r);
                result.push_str("</SendMessageBatchResultEntry>");
            }
            failures_xml(&mut result, failed);
        }
        Reply::Messages(msgs) => {
            for m in msgs {
                message_xml(&mut result, m);
            }
        }
        Reply::BatchIds { successful, failed } => {
            let entry = format!("{action}ResultEntry");
            for id in successful {
                let _ = write!(result, "<{entry}>");
                el(&mut result, "Id", id);
                let _ = write!(result, "</{entry}>");
            }
            failures_xml(&mut result, failed);
        }
        Reply::Tags(tags) => {
            for (k, v) in tags {
                result.push_str("<Tag>");
                el(&mut result, "Key", k);
                el(&mut result, "Value", v);
                result.push_str("</Tag>");
            }
        }
        Reply::DeadLetterSourceQueues { urls, next_token } => {
            for u in urls {
                el(&mut result, "QueueUrl", u);
            }
            if let Some(t) = next_token {
                el(&mut result, "NextToken", t);
            }
        }
        Reply::TaskHandle(h) => el(&mut result, "TaskHandle", h),
        Reply::MessagesMoved(n) => el(&mut result, "ApproximateNumberOfMessagesMoved", &n.to_string()),
        Reply::MoveTasks(tasks) => {
            for t in tasks {
                result.push_str("<ListMessageMoveTasksResultEntry>");
                for (k, v) in task_fields(t) {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    el(&mut result, k, &text);
                }
                result.push_str("</ListMessageMoveTasksResultEntry>");
            }
        }
    }
    if matches!(reply, Reply::Empty) {
        // Operations with no result members answer with just the metadata.
    } else {
        let _ = write!(out, "<{action}Result>{result}</{action}Result>");
    }
    let _ = write!(out, "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>");
    out.into_bytes()
}

/// The Query-protocol `<ErrorResponse>` body.
pub fn xml_error(e: &ApiError, request_id: &str) -> Vec<u8> {
    let w = e.wire();
    let mut out = String::with_capacity(256);
    let _ = write!(out, "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{XMLNS}\"><Error>");
    el(&mut out, "Type", if w.sender_fault { "Sender" } else { "Receiver" });
    el(&mut out, "Code", w.query_code);
    // AWS words this one differently in the Query protocol.
    let message = match e {
        ApiError::Engine(sluice_engine::EngineError::QueueDoesNotExist) => {
            "The specified queue does not exist for this wsdl version.".to_string()
        }
        other => other.to_string(),
    };
    el(&mut out, "Message", &message);
    let _ = write!(out, "<Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::EngineError;

    #[test]
    fn exact_error_documents() {
        let e = ApiError::Engine(EngineError::QueueDoesNotExist);
        assert_eq!(
            String::from_utf8(json_error(&e)).unwrap(),
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#
        );
        assert_eq!(
            String::from_utf8(xml_error(&e, "r-1")).unwrap(),
            "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><Error><Type>Sender</Type>\
             <Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified queue does not exist for this wsdl version.</Message><Detail/></Error>\
             <RequestId>r-1</RequestId></ErrorResponse>"
        );
    }

    #[test]
    fn exact_json_for_hot_replies() {
        use sluice_engine::message::AttributeValue;
        let r = SendResult {
            message_id: "id".into(),
            md5_of_body: "m".into(),
            md5_of_attributes: None,
            md5_of_system_attributes: None,
            sequence_number: Some("7".into()),
        };
        assert_eq!(
            String::from_utf8(json_reply(&Reply::SendMessage(r.clone()))).unwrap(),
            r#"{"MessageId":"id","MD5OfMessageBody":"m","SequenceNumber":"7"}"#
        );
        let batch = Reply::SendMessageBatch { successful: vec![("a".into(), r)], failed: vec![] };
        assert_eq!(
            String::from_utf8(json_reply(&batch)).unwrap(),
            r#"{"Successful":[{"Id":"a","MessageId":"id","MD5OfMessageBody":"m","SequenceNumber":"7"}],"Failed":[]}"#
        );
        let mut attributes = Attributes::new();
        attributes.insert("b".into(), AttributeValue::binary("Binary", vec![1, 2]));
        let m = ReceivedMessage {
            message_id: "id".into(),
            receipt_handle: "rh".into(),
            body: "x".into(),
            md5_of_body: "m".into(),
            system_attributes: [("SentTimestamp".to_string(), "1".to_string())].into(),
            md5_of_attributes: Some("ma".into()),
            attributes,
        };
        assert_eq!(
            String::from_utf8(json_reply(&Reply::Messages(vec![m]))).unwrap(),
            r#"{"Messages":[{"MessageId":"id","ReceiptHandle":"rh","MD5OfBody":"m","Body":"x","Attributes":{"SentTimestamp":"1"},"MD5OfMessageAttributes":"ma","MessageAttributes":{"b":{"BinaryValue":"AQI=","DataType":"Binary"}}}]}"#
        );
        assert_eq!(String::from_utf8(json_reply(&Reply::Messages(vec![]))).unwrap(), "{}");
    }

    #[test]
    fn exact_xml_reply_escapes_bodies() {
        let reply = Reply::QueueUrl("http://h/1/a&b".into());
        assert_eq!(
            String::from_utf8(xml_reply("CreateQueue", &reply, "r")).unwrap(),
            "<?xml version=\"1.0\"?><CreateQueueResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><CreateQueueResult>\
             <QueueUrl>http://h/1/a&amp;b</QueueUrl></CreateQueueResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></CreateQueueResponse>"
        );
    }
}
