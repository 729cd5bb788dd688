//! SNS's side of the Query protocol: the decoding rules of its flattening ([`FormField`], used by
//! the inputs' derived decoders in [`super::action`]) on the request's [`Form`] (parsed once, by
//! [`crate::route`], with the rules every Query request shares: `crate::query`), and the XML out:
//! each output's Result element ([`ResultXml`]), the response envelope and AWS's error document.

use std::collections::BTreeMap;

use crate::query::Node;
use crate::Response;

use super::action::{
    AttributesOutput, BatchEntryInput, EmptyResult, ListSubscriptionsOutput, ListTagsOutput, ListTopicsOutput, MsgAttr,
    NoResult, Operation, PublishBatchOutput, PublishOutput, SnsReply, SubscriptionArnOutput, Tag, TopicArnOutput,
};
use super::error::{Fault, SnsError, SnsResult};
pub use crate::query::Form;

pub const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// How a field of an input is read from the form: `node` is the parameter's node (None when the
/// request has no parameter of that name or below it), `name` gives its full name for errors.
/// Lists are read `1, 2, …` up to the first missing entry ([`Node::run`]).
pub trait FormField: Sized {
    fn from_form(node: Option<Node<'_, '_>>, name: &dyn Fn() -> String) -> SnsResult<Self>;
}

/// Required: `Invalid parameter: <name>` when absent.
impl FormField for String {
    fn from_form(node: Option<Node<'_, '_>>, name: &dyn Fn() -> String) -> SnsResult<Self> {
        node.and_then(|n| n.value()).map(str::to_string).ok_or_else(|| SnsError::missing(&name()))
    }
}

impl FormField for Option<String> {
    fn from_form(node: Option<Node<'_, '_>>, _: &dyn Fn() -> String) -> SnsResult<Self> {
        Ok(node.and_then(|n| n.value()).map(str::to_string))
    }
}

/// "true" (any case) or not.
impl FormField for bool {
    fn from_form(node: Option<Node<'_, '_>>, _: &dyn Fn() -> String) -> SnsResult<Self> {
        Ok(node.and_then(|n| n.value()).is_some_and(|v| v.eq_ignore_ascii_case("true")))
    }
}

/// The numbered entries below `node`'s `list` segment (`entry` or `member`).
fn items<'f, 'a>(node: Option<Node<'f, 'a>>, list: &str) -> impl Iterator<Item = Node<'f, 'a>> {
    node.and_then(|n| n.child(list)).into_iter().flat_map(Node::run)
}

/// `Name.entry.N.key` / `Name.entry.N.value` (N from 1, up to the first missing key).
impl FormField for BTreeMap<String, String> {
    fn from_form(node: Option<Node<'_, '_>>, _: &dyn Fn() -> String) -> SnsResult<Self> {
        Ok(items(node, "entry")
            .map_while(|e| Some((e.get("key")?.to_string(), e.get("value").unwrap_or("").to_string())))
            .collect())
    }
}

/// `Name.member.N` (N from 1).
impl FormField for Vec<String> {
    fn from_form(node: Option<Node<'_, '_>>, _: &dyn Fn() -> String) -> SnsResult<Self> {
        Ok(items(node, "member").map_while(|m| m.value().map(str::to_string)).collect())
    }
}

/// `Name.member.N.Key` / `.Value`.
impl FormField for Vec<Tag> {
    fn from_form(node: Option<Node<'_, '_>>, _: &dyn Fn() -> String) -> SnsResult<Self> {
        Ok(items(node, "member")
            .map_while(|m| {
                Some(Tag { key: m.get("Key")?.to_string(), value: m.get("Value").unwrap_or("").to_string() })
            })
            .collect())
    }
}

/// `PublishBatchRequestEntries.member.N.*`, up to the first entry without an Id.
impl FormField for Vec<BatchEntryInput> {
    fn from_form(node: Option<Node<'_, '_>>, name: &dyn Fn() -> String) -> SnsResult<Self> {
        items(node, "member")
            .take_while(|m| m.get("Id").is_some())
            .enumerate()
            .map(|(i, m)| BatchEntryInput::decode(&m, &format!("{}.member.{}.", name(), i + 1)))
            .collect()
    }
}

/// Message attributes, or the error of the first one whose binary value is not base64. The error
/// is kept rather than raised at decoding so the handler reports it where AWS does: after the
/// topic checks (a missing topic is NotFound even with a bad attribute).
pub type MessageAttributesField = SnsResult<BTreeMap<String, MsgAttr>>;

/// `Name.entry.N.Name` / `.Value.DataType` / `.Value.StringValue` / `.Value.BinaryValue` (base64).
impl FormField for MessageAttributesField {
    fn from_form(node: Option<Node<'_, '_>>, _: &dyn Fn() -> String) -> SnsResult<Self> {
        Ok(message_attributes(node))
    }
}

fn message_attributes(node: Option<Node<'_, '_>>) -> SnsResult<BTreeMap<String, MsgAttr>> {
    use base64::Engine as _;
    let mut out = BTreeMap::new();
    for entry in items(node, "entry") {
        let Some(name) = entry.get("Name") else {
            break;
        };
        let value = entry.child("Value");
        let field = |f: &str| value.and_then(|v| v.get(f));
        let data_type = field("DataType").unwrap_or("").to_string();
        let string_value = field("StringValue").map(str::to_string);
        let binary_value = match field("BinaryValue") {
            Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| {
                SnsError::invalid_value(format!("The message attribute '{name}' has an invalid binary value."))
            })?),
            None => None,
        };
        out.insert(name.to_string(), MsgAttr { data_type, string_value, binary_value });
    }
    Ok(out)
}

/// Escapes text for XML (the same escaping as the SQS Query responses).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::xml::esc(&mut out, s);
    out
}

/// `<Name>value</Name>`, escaped.
pub fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

/// `<Name><entry><key>..</key><value>..</value></entry>...</Name>`
pub fn map_xml(name: &str, map: &BTreeMap<String, String>) -> String {
    let mut s = format!("<{name}>");
    for (k, v) in map {
        s.push_str("<entry>");
        s.push_str(&el("key", k));
        s.push_str(&el("value", v));
        s.push_str("</entry>");
    }
    s.push_str(&format!("</{name}>"));
    s
}

/// `<Name><member>…</member>…</Name>`, each member's content written by `member`.
fn members<T>(name: &str, items: &[T], member: impl Fn(&T) -> String) -> String {
    let mut out = format!("<{name}>");
    for item in items {
        out.push_str("<member>");
        out.push_str(&member(item));
        out.push_str("</member>");
    }
    out.push_str(&format!("</{name}>"));
    out
}

/// A list's `<NextToken>`, when there are more pages.
fn next_token(out: &mut String, token: &Option<String>) {
    if let Some(t) = token {
        out.push_str(&el("NextToken", t));
    }
}

/// An output's `<...Result>` content; None: the response has no Result element.
pub trait ResultXml {
    fn result_xml(&self) -> Option<String>;
}

impl ResultXml for NoResult {
    fn result_xml(&self) -> Option<String> {
        None
    }
}

impl ResultXml for EmptyResult {
    fn result_xml(&self) -> Option<String> {
        Some(String::new())
    }
}

impl ResultXml for TopicArnOutput {
    fn result_xml(&self) -> Option<String> {
        Some(el("TopicArn", &self.topic_arn))
    }
}

impl ResultXml for SubscriptionArnOutput {
    fn result_xml(&self) -> Option<String> {
        Some(el("SubscriptionArn", &self.subscription_arn))
    }
}

impl ResultXml for AttributesOutput {
    fn result_xml(&self) -> Option<String> {
        Some(map_xml("Attributes", &self.attributes))
    }
}

impl ResultXml for ListTopicsOutput {
    fn result_xml(&self) -> Option<String> {
        let mut out = members("Topics", &self.topic_arns, |arn| el("TopicArn", arn));
        next_token(&mut out, &self.next_token);
        Some(out)
    }
}

impl ResultXml for ListSubscriptionsOutput {
    fn result_xml(&self) -> Option<String> {
        let mut out = members("Subscriptions", &self.subscriptions, |s| {
            [
                el("TopicArn", &s.topic_arn),
                el("Protocol", &s.protocol),
                el("SubscriptionArn", &s.subscription_arn),
                el("Owner", &s.owner),
                el("Endpoint", &s.endpoint),
            ]
            .concat()
        });
        next_token(&mut out, &self.next_token);
        Some(out)
    }
}

impl ResultXml for PublishOutput {
    fn result_xml(&self) -> Option<String> {
        let mut out = el("MessageId", &self.message_id);
        if let Some(s) = &self.sequence_number {
            out.push_str(&el("SequenceNumber", s));
        }
        Some(out)
    }
}

impl ResultXml for PublishBatchOutput {
    fn result_xml(&self) -> Option<String> {
        let mut out = String::from("<Successful>");
        for s in &self.successful {
            out.push_str(&format!("<member>{}{}", el("Id", &s.id), el("MessageId", &s.message_id)));
            if let Some(n) = &s.sequence_number {
                out.push_str(&el("SequenceNumber", n));
            }
            out.push_str("</member>");
        }
        out.push_str("</Successful><Failed>");
        for f in &self.failed {
            let sender = if f.error.fault() == Fault::Sender { "true" } else { "false" };
            out.push_str(&format!(
                "<member>{}{}{}{}</member>",
                el("Id", &f.id),
                el("Code", f.error.code()),
                el("Message", &f.error.to_string()),
                el("SenderFault", sender)
            ));
        }
        out.push_str("</Failed>");
        Some(out)
    }
}

impl ResultXml for ListTagsOutput {
    fn result_xml(&self) -> Option<String> {
        Some(members("Tags", &self.tags, |t| el("Key", &t.key) + &el("Value", &t.value)))
    }
}

fn xml(status: u16, body: String, request_id: &str) -> Response {
    Response {
        status,
        content_type: "text/xml",
        headers: vec![("x-amzn-requestid", request_id.to_string())],
        body: body.into_bytes(),
    }
}

/// The 200 response of an operation: `<{Action}Response>` with its Result element, if it has one.
pub fn reply_response(operation: Operation, reply: &SnsReply, request_id: &str) -> Response {
    let action = operation.name();
    let result = match reply.result_xml() {
        Some(result) => format!("<{action}Result>{result}</{action}Result>"),
        None => String::new(),
    };
    let body = format!(
        "<?xml version=\"1.0\"?>\n<{action}Response xmlns=\"{XMLNS}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    xml(200, body, request_id)
}

/// AWS's error document.
pub fn error_response(e: &SnsError, request_id: &str) -> Response {
    let (code, status, fault) = e.wire();
    let side = match fault {
        Fault::Sender => "Sender",
        Fault::Receiver => "Receiver",
    };
    let body = format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{side}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(&e.to_string())
    );
    xml(status, body, request_id)
}

/// Milliseconds since the epoch as ISO 8601 with milliseconds, UTC (`2024-05-01T12:00:00.123Z`).
pub fn iso8601(ms: u64) -> String {
    sluice_engine::clock::iso8601(ms, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_709_294_400_123), "2024-03-01T12:00:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn params() {
        let p = Form::parse(
            Some("Action=CreateTopic"),
            b"Name=t&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x+y&Tags.member.1.Key=k&Tags.member.1.Value=v&TagKeys.member.1=a&TagKeys.member.2=b",
        );
        assert_eq!(p.get("Action"), Some("CreateTopic"));
        assert_eq!(
            BTreeMap::<String, String>::from_form(p.root().child("Attributes"), &String::new)
                .unwrap()
                .get("DisplayName")
                .map(String::as_str),
            Some("x y")
        );
        assert_eq!(
            Vec::<Tag>::from_form(p.root().child("Tags"), &String::new).unwrap(),
            vec![Tag { key: "k".to_string(), value: "v".to_string() }]
        );
        assert_eq!(Vec::<String>::from_form(p.root().child("TagKeys"), &String::new).unwrap(), vec!["a", "b"]);
    }
}
