//! The Query protocol's request side, for SQS and SNS alike: [`Form`], a request's parameters
//! (query string, then form body) percent-decoded once into a tree of their dotted names
//! (`Attribute.1.Name=x` is `Attribute → 1 → Name → x`). [`crate::route`] builds it once per Query
//! request and hands it to the API the request is for:
//! - SQS unflattens it with [`Form::into_json`] into the JSON shape of an operation's input
//!   (`{"Attributes": {"VisibilityTimeout": "60"}}`), from the members each input shape declares
//!   once (`shape!` in [`crate::sqs::action`]: JSON name, Query name, [`Kind`]), so both SQS
//!   protocols deserialize into the same DTOs;
//! - SNS reads fields from its nodes ([`Node::get`], [`Node::run`]) with the rules of
//!   `crate::sns::wire::FormField`.
//!
//! The rules, in one place:
//! - **Decoding**: `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte). A value
//!   without escapes is borrowed from the request, not copied. A bad escape (`%zz`) or bytes that
//!   are not UTF-8 are recorded as the source's [`Malformed`] fault and decoded leniently (the
//!   escape kept as text, bad bytes as U+FFFD): SQS answers the fault with AWS's
//!   `MalformedQueryString`; SNS has always read on.
//! - **Duplicates**: the last value of a name wins, and the body comes after the query string.
//! - **List indexes** are 1-based. SQS reads every numeric child in numeric order, gaps allowed,
//!   and answers an index of 0 or past a 32-bit signed integer with AWS's `MalformedInput`
//!   ([`Node::indexed`]; "0 is not a valid index" is a real answer quoted in rusoto/rusoto#324,
//!   the bound for large ones is ours). SNS reads `1, 2, …` up to the first gap ([`Node::run`]),
//!   as it always has.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sluice_engine::EngineError;

use crate::sqs::error::ApiError;

/// How a member is flattened on the Query wire.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Int,
    /// `Name.N` = value.
    StrList,
    /// `Name.N.<key>` / `Name.N.<value>` pairs.
    StrMap(&'static str, &'static str),
    /// `Name.N.Name`, `Name.N.Value.StringValue|BinaryValue|DataType`.
    AttrMap,
    /// `Name.N.<member>` with the members of a batch entry.
    EntryList(&'static [Member]),
}

/// One member of an input shape: its JSON name, its Query name and how the Query protocol flattens it.
/// Each shape lists its members once (`shape!` in [`crate::sqs::action`]).
pub(crate) type Member = (&'static str, &'static str, Kind);

/// What was wrong with the encoding of one source (query string or body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A `%` not followed by two hex digits, at this byte of the source (the first one).
    Escape(usize),
    /// A name or value that does not decode to UTF-8 (and no bad escape).
    Utf8,
}

impl Malformed {
    /// SQS's answer to it.
    pub(crate) fn to_api_error(self) -> ApiError {
        match self {
            Malformed::Escape(at) => ApiError::MalformedQueryString(format!("Invalid percent-encoding at byte {at}.")),
            Malformed::Utf8 => ApiError::MalformedQueryString("Parameters are not valid UTF-8.".into()),
        }
    }
}

/// A Query-protocol request's parameters: query string and form body together, percent-decoded
/// once (see the module doc for the rules).
#[derive(Debug, Default)]
pub struct Form<'a> {
    root: Node<'a>,
    query_fault: Option<Malformed>,
    body_fault: Option<Malformed>,
}

impl<'a> Form<'a> {
    /// The parameters of a query string and a body, whatever the body's content type (the caller
    /// decides whether a body that is not a form is an error).
    pub fn parse(query: Option<&'a str>, body: &'a [u8]) -> Form<'a> {
        let mut form = Form::default();
        form.add_query(query);
        form.add_body(body);
        form
    }

    /// Adds the query string's parameters (first: the body's win over them).
    pub(crate) fn add_query(&mut self, query: Option<&'a str>) {
        if let Some(q) = query {
            self.query_fault = self.root.add(q.as_bytes());
        }
    }

    /// Adds the body's parameters.
    pub(crate) fn add_body(&mut self, body: &'a [u8]) {
        self.body_fault = self.root.add(body);
    }

    /// A parameter by its full dotted name (`Action`, `Tags.member.1.Key`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.root.get(name)
    }

    /// The `Action` parameter (for logs and metrics).
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// The encoding fault of the query string, if any.
    pub fn query_fault(&self) -> Option<Malformed> {
        self.query_fault
    }

    /// The encoding fault of the body, if any.
    pub fn body_fault(&self) -> Option<Malformed> {
        self.body_fault
    }

    /// The tree's root: the top-level parameters.
    pub(crate) fn root(&self) -> &Node<'a> {
        &self.root
    }

    /// Unflattens the parameters of SQS operation `members` into the JSON shape of its DTO,
    /// moving the decoded values out (no copy of a value decoded from escapes). `path` is the
    /// request path, used as the QueueUrl when the parameter is absent (AWS accepts the queue URL
    /// as the path).
    pub(crate) fn into_json(self, members: &[Member], path: &str) -> Result<Value, ApiError> {
        let mut out = convert(members, self.root)?;
        if !out.contains_key("QueueUrl") && path.trim_matches('/').contains('/') {
            out.insert("QueueUrl".into(), Value::String(path.to_string()));
        }
        Ok(Value::Object(out))
    }
}

/// How many segments of a dotted name become levels of the tree; the rest of a deeper name stays
/// one segment, dots and all. AWS's deepest names have 8
/// (`PublishBatchRequestEntries.member.N.MessageAttributes.entry.N.Value.BinaryValue`), so no
/// lookup changes; it bounds the tree's depth, whose drop recurses (a name of a million dots in
/// an 8 MiB body would otherwise overflow the stack).
const MAX_DEPTH: usize = 16;

/// One dotted name's segment: its value (when the name ends here) and the segments below it.
#[derive(Debug, Default)]
pub struct Node<'a> {
    value: Option<Cow<'a, str>>,
    children: BTreeMap<Cow<'a, str>, Node<'a>>,
}

impl<'a> Node<'a> {
    /// Decodes one `application/x-www-form-urlencoded` source into the tree: pairs split on `&`
    /// (empty ones skipped), name and value on the first `=`. Returns the source's first fault.
    fn add(&mut self, bytes: &'a [u8]) -> Option<Malformed> {
        let mut faults = Faults::default();
        let mut start = 0;
        while start < bytes.len() {
            let end = bytes[start..].iter().position(|&b| b == b'&').map_or(bytes.len(), |i| start + i);
            let pair = &bytes[start..end];
            if !pair.is_empty() {
                let (name, value, value_at) = match pair.iter().position(|&b| b == b'=') {
                    Some(eq) => (&pair[..eq], &pair[eq + 1..], start + eq + 1),
                    None => (pair, &pair[pair.len()..], end),
                };
                let name = decode(name, start, &mut faults);
                let value = decode(value, value_at, &mut faults);
                self.insert(name, value);
            }
            start = end + 1;
        }
        faults.escape.map(Malformed::Escape).or(faults.utf8.then_some(Malformed::Utf8))
    }

    /// Sets the value at a dotted name; a later value replaces an earlier one.
    fn insert(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) {
        let mut node = self;
        match name {
            Cow::Borrowed(name) => {
                for part in name.splitn(MAX_DEPTH, '.') {
                    node = node.children.entry(Cow::Borrowed(part)).or_default();
                }
            }
            Cow::Owned(name) => {
                for part in name.splitn(MAX_DEPTH, '.') {
                    node = node.children.entry(Cow::Owned(part.to_string())).or_default();
                }
            }
        }
        node.value = Some(value);
    }

    /// This node's own value (`Name=value`).
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The node of one segment below this one.
    pub fn child(&self, segment: &str) -> Option<&Node<'a>> {
        self.children.get(segment)
    }

    /// The value at a dotted name below this node.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut node = self;
        for part in name.splitn(MAX_DEPTH, '.') {
            node = node.child(part)?;
        }
        node.value()
    }

    /// SNS's reading of a list: the children `1`, `2`, … up to the first index that is missing.
    pub fn run(&self) -> impl Iterator<Item = &Node<'a>> {
        (1u32..).map_while(move |i| self.child(&i.to_string()))
    }

    /// SQS's reading of a list: every child with a numeric name, in numeric order (Query lists
    /// are 1-based and may be sparse); an index of 0 or past `i32::MAX` is `MalformedInput`.
    fn indexed(self) -> Result<Vec<Node<'a>>, ApiError> {
        let mut items = Vec::new();
        for (key, node) in self.children {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            match key.parse::<i32>() {
                Ok(i) if i >= 1 => items.push((i, node)),
                _ => return Err(ApiError::Serialization(format!("{key} is not a valid index"))),
            }
        }
        items.sort_by_key(|(i, _)| *i);
        Ok(items.into_iter().map(|(_, n)| n).collect())
    }

    /// Takes the value of a child out.
    fn take(&mut self, segment: &str) -> Option<String> {
        self.children.remove(segment).and_then(|n| n.value).map(Cow::into_owned)
    }
}

#[derive(Default)]
struct Faults {
    escape: Option<usize>,
    utf8: bool,
}

/// Decodes one name or value; `at` is its offset in the source (for the position of a bad escape).
fn decode<'a>(raw: &'a [u8], at: usize, faults: &mut Faults) -> Cow<'a, str> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return match std::str::from_utf8(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                faults.utf8 = true;
                String::from_utf8_lossy(raw)
            }
        };
    }
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ => {
                    faults.escape.get_or_insert(at + i);
                    out.push(b'%');
                }
            },
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => {
            faults.utf8 = true;
            Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned())
        }
    }
}

fn int(name: &str, text: String) -> Result<Value, ApiError> {
    text.trim().parse::<i64>().map(Value::from).map_err(|_| {
        ApiError::Engine(EngineError::InvalidParameterValue(format!(
            "Value {text} for parameter {name} is invalid. Reason: must be an integer."
        )))
    })
}

fn convert(members: &[Member], mut node: Node<'_>) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for &(json, query, kind) in members {
        let Some(child) = node.children.remove(query) else { continue };
        let value = match kind {
            Kind::Str => match child.value {
                Some(v) => Value::String(v.into_owned()),
                None => continue,
            },
            Kind::Int => match child.value {
                Some(v) => int(query, v.into_owned())?,
                None => continue,
            },
            Kind::StrList => Value::Array(
                child.indexed()?.into_iter().filter_map(|n| n.value.map(|v| Value::String(v.into_owned()))).collect(),
            ),
            Kind::StrMap(k, v) => {
                let mut map = Map::new();
                for mut entry in child.indexed()? {
                    if let Some(key) = entry.take(k) {
                        map.insert(key, Value::String(entry.take(v).unwrap_or_default()));
                    }
                }
                Value::Object(map)
            }
            Kind::AttrMap => {
                let mut map = Map::new();
                for mut entry in child.indexed()? {
                    let Some(name) = entry.take("Name") else { continue };
                    let mut value = Map::new();
                    if let Some(mut v) = entry.children.remove("Value") {
                        for field in ["DataType", "StringValue", "BinaryValue"] {
                            if let Some(text) = v.take(field) {
                                value.insert(field.into(), Value::String(text));
                            }
                        }
                    }
                    map.insert(name, Value::Object(value));
                }
                Value::Object(map)
            }
            Kind::EntryList(entry_members) => Value::Array(
                child
                    .indexed()?
                    .into_iter()
                    .map(|e| convert(entry_members, e).map(Value::Object))
                    .collect::<Result<_, _>>()?,
            ),
        };
        out.insert(json.to_string(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqs::action::Action;
    use serde_json::json;

    fn form(s: &str) -> Form<'_> {
        let form = Form::parse(None, s.as_bytes());
        assert_eq!(form.body_fault(), None);
        form
    }

    fn to_json(s: &str, action: &str, path: &str) -> Result<Value, ApiError> {
        form(s).into_json(Action::query_members(action).unwrap(), path)
    }

    #[test]
    fn unflattens_maps_lists_and_entries() {
        assert_eq!(
            to_json("Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60&Tag.1.Key=k&Tag.1.Value=v", "CreateQueue", "/").unwrap(),
            json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "60"}, "tags": {"k": "v"}})
        );
        let batch = "SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=y&SendMessageBatchRequestEntry.10.Id=c&SendMessageBatchRequestEntry.10.MessageBody=z\
             &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x&SendMessageBatchRequestEntry.1.DelaySeconds=5\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=s";
        assert_eq!(
            to_json(batch, "SendMessageBatch", "/000000000000/q").unwrap(),
            json!({"QueueUrl": "/000000000000/q", "Entries": [
                {"Id": "a", "MessageBody": "x", "DelaySeconds": 5, "MessageAttributes": {"n": {"DataType": "String", "StringValue": "s"}}},
                {"Id": "b", "MessageBody": "y"},
                {"Id": "c", "MessageBody": "z"}]})
        );
        assert_eq!(
            to_json(
                "AttributeName.1=All&AttributeName.2=QueueArn&QueueUrl=http%3A%2F%2Fh%2F1%2Fq",
                "GetQueueAttributes",
                "/"
            )
            .unwrap(),
            json!({"QueueUrl": "http://h/1/q", "AttributeNames": ["All", "QueueArn"]})
        );
    }

    #[test]
    fn rejects_bad_encoding_and_bad_integers() {
        let fault = |s: &'static str| Form::parse(None, s.as_bytes()).body_fault();
        assert_eq!(fault("Action=%zz"), Some(Malformed::Escape(7)));
        assert_eq!(fault("Action=%ff%fe"), Some(Malformed::Utf8));
        // A bad escape is reported before bad UTF-8, wherever each is.
        assert_eq!(fault("A=%ff&B=%4"), Some(Malformed::Escape(8)));
        assert_eq!(fault("A=%2&B=x"), Some(Malformed::Escape(2)));
        assert!(matches!(Malformed::Utf8.to_api_error(), ApiError::MalformedQueryString(_)));
        assert!(to_json("MaxNumberOfMessages=ten", "ReceiveMessage", "/").is_err());
    }

    #[test]
    fn decoding_duplicates_and_sources() {
        // Lenient decoding (what SNS reads): a bad escape stays text, `+` is a space.
        let f = Form::parse(Some("a=%zz&b=x+y%2By&c&&=v"), b"");
        assert_eq!(f.query_fault(), Some(Malformed::Escape(2)));
        assert_eq!((f.get("a"), f.get("b"), f.get("c"), f.get("")), (Some("%zz"), Some("x y+y"), Some(""), Some("v")));
        // The last value wins; the body comes after the query string.
        let f = Form::parse(Some("Action=A&Name=q&Name=r"), b"Action=B");
        assert_eq!((f.action(), f.get("Name")), (Some("B"), Some("r")));
        // Escaped dots in a name still separate segments.
        assert_eq!(form("Tags%2Emember.1.Key=k").get("Tags.member.1.Key"), Some("k"));
        // A name deeper than the tree keeps its tail in one segment, and is still found by its name.
        let deep = format!("{}=v", ["a"; 1000].join("."));
        assert_eq!(form(&deep).get(&deep[..deep.len() - 2]), Some("v"));
        let deep = format!("{}=v", ["a"; 2_000_000].join("."));
        drop(form(&deep));
    }

    #[test]
    fn list_indexes() {
        let f = form("L.member.1=a&L.member.2=b&L.member.4=d&L.member.0=z");
        let run: Vec<_> =
            f.root().child("L").and_then(|l| l.child("member")).unwrap().run().filter_map(Node::value).collect();
        assert_eq!(run, ["a", "b"], "SNS reads up to the first gap");
        assert!(matches!(
            to_json("AttributeName.0=All", "GetQueueAttributes", "/"),
            Err(ApiError::Serialization(m)) if m == "0 is not a valid index"
        ));
        assert!(to_json("AttributeName.2147483648=All", "GetQueueAttributes", "/").is_err());
        assert_eq!(
            to_json("AttributeName.3=C&AttributeName.1=A", "GetQueueAttributes", "/").unwrap(),
            json!({"AttributeNames": ["A", "C"]}),
            "SQS reads every index, in order"
        );
    }
}
