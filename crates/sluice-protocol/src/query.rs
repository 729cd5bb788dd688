//! The Query protocol's request side: form / query-string parameters such as
//! `Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60` unflattened into the JSON shape the
//! operation's DTO reads (`{"Attributes": {"VisibilityTimeout": "60"}}`).
//!
//! Each operation's input shape lists its members once (`shape!` in [`crate::sqs::action`]): the JSON name, the
//! Query name and the [`Kind`].

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

/// Parameters as a tree: `A.1.B=x` becomes `A → 1 → B → x`.
#[derive(Default, Debug)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, key: &str, value: String) {
        let mut node = self;
        for part in key.split('.') {
            node = node.children.entry(part.to_string()).or_default();
        }
        node.value = Some(value);
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.get(name)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.child(name).and_then(|n| n.value.clone())
    }

    /// Children with numeric names, in numeric order (Query lists are 1-based and may be sparse).
    /// An index of 0, or one past a 32-bit signed integer, is AWS's `MalformedInput` ("0 is not a valid
    /// index", a real answer quoted in rusoto/rusoto#324; the bound for large ones is ours).
    fn indexed(&self) -> Result<Vec<&Node>, ApiError> {
        let mut items = Vec::new();
        for (key, node) in &self.children {
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
}

/// Decoded form parameters.
pub struct Params {
    root: Node,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes (a body or a query string) into `self`.
    pub fn parse(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        check_percent_encoding(bytes)?;
        for (k, v) in form_urlencoded::parse(bytes) {
            self.root.insert(&k, v.into_owned());
        }
        Ok(())
    }

    /// Empty parameters.
    pub fn new() -> Self {
        Params { root: Node::default() }
    }

    /// A top-level parameter, e.g. `Action`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.root.text(name)
    }

    /// Unflattens the parameters of `action` into the JSON shape of its DTO. `path` is the request
    /// path, used as the QueueUrl when the parameter is absent (AWS accepts the queue URL as the path).
    pub fn to_json(&self, action: &str, path: &str) -> Result<Value, ApiError> {
        let members = crate::sqs::action::Action::query_members(action).unwrap_or(&[]);
        let mut out = convert(members, &self.root)?;
        if !out.contains_key("QueueUrl") && path.trim_matches('/').contains('/') {
            out.insert("QueueUrl".into(), Value::String(path.to_string()));
        }
        Ok(Value::Object(out))
    }
}

impl Default for Params {
    fn default() -> Self {
        Self::new()
    }
}

/// form_urlencoded silently keeps a bad escape such as `%zz`; AWS rejects it, and so do we.
fn check_percent_encoding(bytes: &[u8]) -> Result<(), ApiError> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(ApiError::MalformedQueryString(format!("Invalid percent-encoding at byte {i}.")));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    // Keys and values must decode to UTF-8 text.
    let decoded: Vec<u8> = percent_decode(bytes);
    if std::str::from_utf8(&decoded).is_err() {
        return Err(ApiError::MalformedQueryString("Parameters are not valid UTF-8.".into()));
    }
    Ok(())
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn int(name: &str, text: String) -> Result<Value, ApiError> {
    text.trim().parse::<i64>().map(Value::from).map_err(|_| {
        ApiError::Engine(EngineError::InvalidParameterValue(format!(
            "Value {text} for parameter {name} is invalid. Reason: must be an integer."
        )))
    })
}

fn convert(members: &[Member], node: &Node) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for &(json, query, kind) in members {
        let Some(child) = node.child(query) else { continue };
        let value = match kind {
            Kind::Str => match &child.value {
                Some(v) => Value::String(v.clone()),
                None => continue,
            },
            Kind::Int => match &child.value {
                Some(v) => int(query, v.clone())?,
                None => continue,
            },
            Kind::StrList => {
                Value::Array(child.indexed()?.into_iter().filter_map(|n| n.value.clone().map(Value::String)).collect())
            }
            Kind::StrMap(k, v) => {
                let mut map = Map::new();
                for entry in child.indexed()? {
                    if let Some(key) = entry.text(k) {
                        map.insert(key, Value::String(entry.text(v).unwrap_or_default()));
                    }
                }
                Value::Object(map)
            }
            Kind::AttrMap => {
                let mut map = Map::new();
                for entry in child.indexed()? {
                    let Some(name) = entry.text("Name") else { continue };
                    let mut value = Map::new();
                    if let Some(v) = entry.child("Value") {
                        for field in ["DataType", "StringValue", "BinaryValue"] {
                            if let Some(text) = v.text(field) {
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
    use serde_json::json;

    fn params(s: &str) -> Params {
        let mut p = Params::new();
        p.parse(s.as_bytes()).unwrap();
        p
    }

    #[test]
    fn unflattens_maps_lists_and_entries() {
        let p = params("Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60&Tag.1.Key=k&Tag.1.Value=v");
        assert_eq!(
            p.to_json("CreateQueue", "/").unwrap(),
            json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "60"}, "tags": {"k": "v"}})
        );
        let p = params(
            "SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=y&SendMessageBatchRequestEntry.10.Id=c&SendMessageBatchRequestEntry.10.MessageBody=z\
             &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x&SendMessageBatchRequestEntry.1.DelaySeconds=5\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=s",
        );
        assert_eq!(
            p.to_json("SendMessageBatch", "/000000000000/q").unwrap(),
            json!({"QueueUrl": "/000000000000/q", "Entries": [
                {"Id": "a", "MessageBody": "x", "DelaySeconds": 5, "MessageAttributes": {"n": {"DataType": "String", "StringValue": "s"}}},
                {"Id": "b", "MessageBody": "y"},
                {"Id": "c", "MessageBody": "z"}]})
        );
        let p = params("AttributeName.1=All&AttributeName.2=QueueArn&QueueUrl=http%3A%2F%2Fh%2F1%2Fq");
        assert_eq!(
            p.to_json("GetQueueAttributes", "/").unwrap(),
            json!({"QueueUrl": "http://h/1/q", "AttributeNames": ["All", "QueueArn"]})
        );
    }

    #[test]
    fn rejects_bad_encoding_and_bad_integers() {
        let mut p = Params::new();
        assert!(matches!(p.parse(b"Action=%zz"), Err(ApiError::MalformedQueryString(_))));
        assert!(matches!(p.parse(b"Action=%ff%fe"), Err(ApiError::MalformedQueryString(_))));
        let p = params("MaxNumberOfMessages=ten");
        assert!(p.to_json("ReceiveMessage", "/").is_err());
    }
}
