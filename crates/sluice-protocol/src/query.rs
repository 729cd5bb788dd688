//! The Query protocol's request side, for SQS and SNS alike: [`Form`], a request's parameters
//! (query string, then form body) percent-decoded once and read by their dotted names as a tree
//! (`Attribute.1.Name=x` is `Attribute → 1 → Name → x`; a [`Node`] is a prefix). [`crate::route`]
//! builds it once per Query request and hands it to the API the request is for:
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
//!   (`Span::indexed`; "0 is not a valid index" is a real answer quoted in rusoto/rusoto#324,
//!   the bound for large ones is ours). SNS reads `1, 2, …` up to the first gap ([`Node::run`]),
//!   as it always has.
//! - **Cost**: one sorted list of the pairs, no node per segment: a request of many deep names
//!   costs its pairs, not a tree (an 8 MiB body of 200k 16-segment names took 2.7 GB as a tree of
//!   maps, and a name of a million dots overflowed the stack when the tree was dropped).

use std::borrow::Cow;
use std::cmp::Ordering;

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

/// One parameter: its name and value.
type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// A Query-protocol request's parameters: query string and form body together, percent-decoded
/// once (see the module doc for the rules). Held as one sorted list, not a tree: the names are
/// ordered segment by segment, so the names below any dotted prefix are neighbours and a
/// [`Node`] is a range of the list (one allocation per request, whatever the names' depth).
#[derive(Debug, Default)]
pub struct Form<'a> {
    /// One per name (the last one sent), sorted by [`by_segments`].
    params: Vec<Param<'a>>,
    query_fault: Option<Malformed>,
    body_fault: Option<Malformed>,
}

/// The parameters as they are decoded, in the order sent, before they become a [`Form`].
#[derive(Default)]
pub(crate) struct Pairs<'a> {
    pairs: Vec<Param<'a>>,
    query_fault: Option<Malformed>,
    body_fault: Option<Malformed>,
}

impl<'a> Pairs<'a> {
    /// Adds the query string's parameters (first: the body's win over them).
    pub(crate) fn add_query(&mut self, query: Option<&'a str>) {
        if let Some(q) = query {
            self.query_fault = self.add(q.as_bytes());
        }
    }

    /// Adds the body's parameters.
    pub(crate) fn add_body(&mut self, body: &'a [u8]) {
        self.body_fault = self.add(body);
    }

    /// The last value sent for `name` so far.
    pub(crate) fn last(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }

    /// Decodes one `application/x-www-form-urlencoded` source: pairs split on `&` (empty ones
    /// skipped), name and value on the first `=`. Returns the source's first fault.
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
                self.pairs.push((name, value));
            }
            start = end + 1;
        }
        faults.escape.map(Malformed::Escape).or(faults.utf8.then_some(Malformed::Utf8))
    }

    /// Sorts the parameters and keeps the last value of each name.
    pub(crate) fn finish(self) -> Form<'a> {
        let mut params = self.pairs;
        params.sort_by(|a, b| by_segments(&a.0, &b.0)); // stable: equal names stay in the order sent
        params.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Form { params, query_fault: self.query_fault, body_fault: self.body_fault }
    }
}

/// Names in segment order: `.` sorts below every other byte, so `A.1.x` and `A.1` come before
/// `A.1-x` and the names below a prefix are neighbours.
fn by_segments(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len().min(b.len());
    let i = a[..n].iter().zip(&b[..n]).position(|(x, y)| x != y).unwrap_or(n);
    // At the first difference: the end of a name first, then a dot, then the other bytes.
    let rank = |s: &[u8]| s.get(i).map(|&c| if c == b'.' { 0 } else { u16::from(c) + 1 });
    rank(a).cmp(&rank(b))
}

impl<'a> Form<'a> {
    /// The parameters of a query string and a body, whatever the body's content type (the caller
    /// decides whether a body that is not a form is an error).
    pub fn parse(query: Option<&'a str>, body: &'a [u8]) -> Form<'a> {
        let mut pairs = Pairs::default();
        pairs.add_query(query);
        pairs.add_body(body);
        pairs.finish()
    }

    /// A parameter by its full dotted name (`Action`, `Tags.member.1.Key`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.root().get(name)
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

    /// The top-level parameters.
    pub(crate) fn root(&self) -> Node<'_, 'a> {
        Node { params: &self.params, span: Span::root(self.params.len()) }
    }

    /// Unflattens the parameters of SQS operation `members` into the JSON shape of its DTO,
    /// moving the decoded values out (no copy of a value decoded from escapes). `path` is the
    /// request path, used as the QueueUrl when the parameter is absent (AWS accepts the queue URL
    /// as the path).
    pub(crate) fn into_json(mut self, members: &[Member], path: &str) -> Result<Value, ApiError> {
        let root = Span::root(self.params.len());
        let mut out = convert(members, &mut self.params, root)?;
        if !out.contains_key("QueueUrl") && path.trim_matches('/').contains('/') {
            out.insert("QueueUrl".into(), Value::String(path.to_string()));
        }
        Ok(Value::Object(out))
    }
}

/// A dotted prefix's place in the sorted parameters: the index of its own value (when a name ends
/// there) and the range of the names below it.
#[derive(Clone, Copy, Debug)]
struct Span {
    value: Option<usize>,
    lo: usize,
    hi: usize,
    /// Bytes of the names before the next segment: the prefix and its dot (0 at the root).
    prefix: usize,
}

impl Span {
    fn root(len: usize) -> Span {
        Span { value: None, lo: 0, hi: len, prefix: 0 }
    }

    /// The span of the segment `segment` below this one.
    fn child(self, params: &[Param<'_>], segment: &str) -> Option<Span> {
        let prefix = self.prefix;
        let order = |p: &Param<'_>| segment_order(&p.0, prefix, segment);
        let lo = self.lo + params[self.lo..self.hi].partition_point(|p| order(p) == Ordering::Less);
        let hi = lo + params[lo..self.hi].partition_point(|p| order(p) == Ordering::Equal);
        if lo == hi {
            return None;
        }
        // The name that ends at the segment sorts before the names below it.
        let exact = params[lo].0.len() == self.prefix + segment.len();
        let below = if exact { lo + 1 } else { lo };
        Some(Span { value: exact.then_some(lo), lo: below, hi, prefix: self.prefix + segment.len() + 1 })
    }

    /// SQS's reading of a list: every child with a numeric name, in numeric order (Query lists
    /// are 1-based and may be sparse); an index of 0 or past `i32::MAX` is `MalformedInput`.
    fn indexed(self, params: &[Param<'_>]) -> Result<Vec<Span>, ApiError> {
        let mut items = Vec::new();
        let mut at = self.lo;
        while at < self.hi {
            let key = first_segment(&params[at].0, self.prefix);
            let Some(child) = Span { lo: at, ..self }.child(params, key) else { break };
            at = child.hi;
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            match key.parse::<i32>() {
                Ok(i) if i >= 1 => items.push((i, child)),
                _ => return Err(ApiError::Serialization(format!("{key} is not a valid index"))),
            }
        }
        items.sort_by_key(|(i, _)| *i);
        Ok(items.into_iter().map(|(_, span)| span).collect())
    }
}

/// How the segment of `name` after its first `prefix` bytes compares with `segment` (which has no
/// dot), without looking further into the name than `segment` is long.
fn segment_order(name: &str, prefix: usize, segment: &str) -> Ordering {
    let rest = name.as_bytes().get(prefix..).unwrap_or_default();
    for (i, &want) in segment.as_bytes().iter().enumerate() {
        match rest.get(i) {
            None | Some(b'.') => return Ordering::Less,
            Some(&c) if c != want => return c.cmp(&want),
            Some(_) => {}
        }
    }
    match rest.get(segment.len()) {
        None | Some(b'.') => Ordering::Equal,
        Some(_) => Ordering::Greater,
    }
}

/// The segment of `name` after its first `prefix` bytes.
fn first_segment(name: &str, prefix: usize) -> &str {
    let rest = name.get(prefix..).unwrap_or("");
    rest.split('.').next().unwrap_or(rest)
}

/// Takes the value of the child `segment` of `at` out of the parameters.
fn take(params: &mut [Param<'_>], at: Span, segment: &str) -> Option<String> {
    let i = at.child(params, segment)?.value?;
    Some(std::mem::take(&mut params[i].1).into_owned())
}

/// A dotted prefix of the form's names (`Tags`, `Tags.member.1`): its value and the names below
/// it, read by SNS's field rules.
#[derive(Clone, Copy, Debug)]
pub struct Node<'f, 'a> {
    params: &'f [Param<'a>],
    span: Span,
}

impl<'f, 'a> Node<'f, 'a> {
    /// This node's own value (`Name=value`).
    pub fn value(&self) -> Option<&'f str> {
        self.span.value.map(|i| self.params[i].1.as_ref())
    }

    /// The node of one segment below this one.
    pub fn child(&self, segment: &str) -> Option<Node<'f, 'a>> {
        self.span.child(self.params, segment).map(|span| Node { params: self.params, span })
    }

    /// The value at a dotted name below this node.
    pub fn get(&self, name: &str) -> Option<&'f str> {
        let mut node = *self;
        for part in name.split('.') {
            node = node.child(part)?;
        }
        node.value()
    }

    /// SNS's reading of a list: the children `1`, `2`, … up to the first index that is missing.
    pub fn run(self) -> impl Iterator<Item = Node<'f, 'a>> {
        (1u32..).map_while(move |i| self.child(&i.to_string()))
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

fn convert(members: &[Member], params: &mut [Param<'_>], at: Span) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for &(json, query, kind) in members {
        let Some(child) = at.child(params, query) else { continue };
        let mut own = || child.value.map(|i| std::mem::take(&mut params[i].1).into_owned());
        let value = match kind {
            Kind::Str => match own() {
                Some(v) => Value::String(v),
                None => continue,
            },
            Kind::Int => match own() {
                Some(v) => int(query, v)?,
                None => continue,
            },
            Kind::StrList => Value::Array(
                child
                    .indexed(params)?
                    .into_iter()
                    .filter_map(|n| n.value.map(|i| Value::String(std::mem::take(&mut params[i].1).into_owned())))
                    .collect(),
            ),
            Kind::StrMap(k, v) => {
                let mut map = Map::new();
                for entry in child.indexed(params)? {
                    if let Some(key) = take(params, entry, k) {
                        map.insert(key, Value::String(take(params, entry, v).unwrap_or_default()));
                    }
                }
                Value::Object(map)
            }
            Kind::AttrMap => {
                let mut map = Map::new();
                for entry in child.indexed(params)? {
                    let Some(name) = take(params, entry, "Name") else { continue };
                    let mut value = Map::new();
                    if let Some(v) = entry.child(params, "Value") {
                        for field in ["DataType", "StringValue", "BinaryValue"] {
                            if let Some(text) = take(params, v, field) {
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
                    .indexed(params)?
                    .into_iter()
                    .map(|e| convert(entry_members, params, e).map(Value::Object))
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
        // Deep names: found by their name, and nothing recurses over their depth.
        let deep = format!("{}=v", ["a"; 1000].join("."));
        assert_eq!(form(&deep).get(&deep[..deep.len() - 2]), Some("v"));
        let deep = format!("{}=v", ["a"; 2_000_000].join("."));
        assert_eq!(form(&deep).get(&deep[..deep.len() - 2]), Some("v"));
        // Names sort segment by segment: `A.1-x` does not split `A.1`'s names.
        let f = form("A.1.x=1&A.1-x=2&A.1=3&A.1.y=4&A.10.x=5");
        let a1 = f.root().child("A").and_then(|a| a.child("1")).unwrap();
        assert_eq!((a1.value(), a1.get("x"), a1.get("y")), (Some("3"), Some("1"), Some("4")));
        assert_eq!(f.get("A.1-x"), Some("2"));
    }

    /// Every name reads back its last value, as a flat map of names would, whatever bytes the
    /// names share (a dot against `-`, `+`, `%2E`, empty segments…).
    #[test]
    fn lookups_agree_with_a_flat_map() {
        let alphabet = ["a", "b", "1", "10", ".", "-", "%2E", "+", "%00", ""];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        for _ in 0..200 {
            let mut body = String::new();
            let mut flat = std::collections::HashMap::new();
            for v in 0..next(40) {
                let name: String = (0..1 + next(6)).map(|_| alphabet[next(alphabet.len())]).collect();
                body.push_str(&format!("{name}={v}&"));
                let decoded = Form::parse(Some(&format!("{name}=x")), b"").params[0].0.to_string();
                flat.insert(decoded, v.to_string());
            }
            let form = Form::parse(None, body.as_bytes());
            for (name, value) in &flat {
                assert_eq!(form.get(name), Some(value.as_str()), "{name:?} in {body:?}");
            }
            assert_eq!(form.params.len(), flat.len());
        }
    }

    #[test]
    fn list_indexes() {
        let f = form("L.member.1=a&L.member.2=b&L.member.4=d&L.member.0=z");
        let run: Vec<_> =
            f.root().child("L").and_then(|l| l.child("member")).unwrap().run().filter_map(|n| n.value()).collect();
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
