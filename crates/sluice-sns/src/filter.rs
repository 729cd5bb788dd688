//! SNS subscription filter policies: parsing with AWS's limits and error messages, and matching
//! against message attributes (`FilterPolicyScope` = `MessageAttributes`, the default) or the JSON
//! message body (`MessageBody`).
//!
//! Operators (AWS's "Amazon SNS subscription filter policies" pages): exact string / number /
//! boolean / null match, `prefix`, `suffix`, `equals-ignore-case`, `anything-but` (a value, a list
//! of strings and numbers, or `{"prefix" | "equals-ignore-case": "..."}`; AWS rejects an anything-but
//! `suffix`, and so does sluice), `numeric`
//! (`=`, and ranges with `>`, `>=`, `<`, `<=`), `exists`, `cidr` (IPv4 and IPv6), `$or`, and nested
//! keys (body scope only). `wildcard` is not an SNS operator (EventBridge has it; AWS's SNS pages do
//! not list it), so it is rejected as an unrecognized match type.
//!
//! Limits: at most 5 keys (attribute scope: every key name, `$or` branches included; body scope:
//! the top-level keys), at most 150 combinations (the product over every value array of its length
//! times its nesting depth, `$or` branches added up), at most 256 KB of JSON, numbers within ±10^9.
//! Nesting depth is bounded by the combination rule (every value counts its depth: two values
//! 75 levels down are already 150 combinations) and by the JSON parser's 128 levels.
//!
//! Errors are AWS's reasons (`FilterPolicy: Filter policy is too complex`, ...) without the
//! `Invalid parameter: ` prefix, which depends on the action: Subscribe answers
//! `Invalid parameter: Attributes Reason: <reason>`, SetSubscriptionAttributes
//! `Invalid parameter: <reason>` (see [`invalid_parameter`]).

use std::net::IpAddr;

use serde_json::Value;

/// Where the policy looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    /// Parses a `FilterPolicyScope` value; the error is AWS's reason.
    pub fn parse(s: &str) -> Result<Scope, String> {
        match s {
            "MessageAttributes" => Ok(Scope::MessageAttributes),
            "MessageBody" => Ok(Scope::MessageBody),
            _ => Err(format!(
                "FilterPolicyScope: Invalid value [{s}]. Please use either MessageBody or MessageAttributes"
            )),
        }
    }
}

/// AWS's InvalidParameter message for a filter-policy `reason`: Subscribe reports attribute errors
/// as `Attributes Reason: ...`, SetSubscriptionAttributes without it.
pub fn invalid_parameter(reason: &str, subscribe: bool) -> String {
    if subscribe {
        format!("Invalid parameter: Attributes Reason: {reason}")
    } else {
        format!("Invalid parameter: {reason}")
    }
}

/// AWS: at most 5 keys in a policy.
pub const MAX_KEYS: usize = 5;
/// AWS: at most 150 combinations of values.
pub const MAX_COMBINATIONS: usize = 150;
/// AWS: a filter policy is at most 256 KB.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
const MAX_NUMBER: f64 = 1.0e9;

#[derive(Debug, Clone)]
enum Cond {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Negated),
    Numeric(Vec<(NumOp, f64)>),
    Exists(bool),
    Cidr(Cidr),
}

/// What an `anything-but` excludes.
#[derive(Debug, Clone)]
enum Negated {
    Values(Vec<Lit>),
    Prefix(String),
    EqualsIgnoreCase(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NumOp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A network: both families as 128-bit numbers (IPv4 in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    v6: bool,
    net: u128,
    mask: u128,
}

impl Cidr {
    fn contains(&self, text: &str) -> bool {
        match text.trim().parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if !self.v6 => u128::from(u32::from(a)) & self.mask == self.net,
            Ok(IpAddr::V6(a)) if self.v6 => u128::from(a) & self.mask == self.net,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
enum Rule {
    Leaf(Vec<Cond>),
    Nested(Node),
}

#[derive(Debug, Clone, Default)]
struct Node {
    keys: Vec<(String, Rule)>,
    /// Each `$or` is a list of alternatives.
    ors: Vec<Vec<Node>>,
}

/// A parsed, validated filter policy.
#[derive(Debug, Clone)]
pub struct FilterPolicy {
    root: Node,
    scope: Scope,
}

/// A value found in a message, to match against.
#[derive(Debug, Clone, PartialEq)]
pub enum MsgValue {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

/// The values a key has in a message.
struct Found {
    values: Vec<MsgValue>,
    /// A `String.Array` attribute: `anything-but` must hold for every element ("it matches if none
    /// of the array elements are listed in the policy property"). Elsewhere (scalars, arrays in a
    /// JSON body) one element is enough, as for every other operator.
    every_element: bool,
}

fn err(reason: impl std::fmt::Display) -> String {
    format!("FilterPolicy: {reason}")
}

/// A JSON value as AWS quotes it in messages: strings bare, anything else as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl FilterPolicy {
    /// Parses and validates `text` for `scope`; the error is AWS's reason (see the module docs).
    pub fn parse(text: &str, scope: Scope) -> Result<FilterPolicy, String> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(err("Filter policy is too long"));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| err(format!("failed to parse JSON. {e}")))?;
        if !value.is_object() {
            return Err(err("Filter policy must be a JSON object"));
        }
        let root = parse_node(&value, scope)?;
        let mut keys = Vec::new();
        collect_keys(&root, &mut keys);
        keys.sort();
        keys.dedup();
        if keys.len() > MAX_KEYS {
            return Err(err(format!("Filter policy can not have more than {MAX_KEYS} keys")));
        }
        if combinations(&root, 1) > MAX_COMBINATIONS {
            return Err(err("Filter policy is too complex"));
        }
        Ok(FilterPolicy { root, scope })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Matches message attributes: `(name, data type, string value)`. Only String, String.Array
    /// and Number attributes take part (Binary ones are ignored, as AWS ignores them).
    pub fn matches_attributes(&self, attrs: &[(String, String, String)]) -> bool {
        let lookup = |key: &str| -> Option<Found> {
            let (_, ty, v) = attrs.iter().find(|(n, _, _)| n == key)?;
            if ty.starts_with("Binary") {
                return None;
            }
            if ty.starts_with("Number") {
                let values = v.trim().parse::<f64>().map(MsgValue::Num).into_iter().collect();
                return Some(Found { values, every_element: false });
            }
            if ty == "String.Array" {
                let parsed: Value = serde_json::from_str(v).ok()?;
                let Value::Array(items) = parsed else {
                    return None;
                };
                let values = items.iter().filter_map(json_scalar).collect();
                return Some(Found { values, every_element: true });
            }
            Some(Found { values: vec![MsgValue::Str(v.clone())], every_element: false })
        };
        let any_attribute = attrs.iter().any(|(_, ty, _)| !ty.starts_with("Binary"));
        match_flat(&self.root, &lookup, any_attribute)
    }

    /// Matches a message body; a body that is not a JSON object matches nothing.
    pub fn matches_body(&self, body: &str) -> bool {
        match serde_json::from_str::<Value>(body) {
            Ok(v @ Value::Object(_)) => match_nested(&self.root, Some(&v)),
            _ => false,
        }
    }
}

fn json_scalar(v: &Value) -> Option<MsgValue> {
    match v {
        Value::String(s) => Some(MsgValue::Str(s.clone())),
        Value::Number(n) => n.as_f64().map(MsgValue::Num),
        Value::Bool(b) => Some(MsgValue::Bool(*b)),
        Value::Null => Some(MsgValue::Null),
        _ => None,
    }
}

fn parse_node(value: &Value, scope: Scope) -> Result<Node, String> {
    let Value::Object(map) = value else {
        return Err(err("Filter policy must be a JSON object"));
    };
    let mut node = Node::default();
    for (key, v) in map {
        if key == "$or" {
            let alts = match v {
                Value::Array(alts) if alts.len() >= 2 && alts.iter().all(Value::is_object) => alts,
                _ => return Err(err("$or must be an array of at least two objects")),
            };
            let mut parsed = Vec::with_capacity(alts.len());
            for alt in alts {
                parsed.push(parse_node(alt, scope)?);
            }
            node.ors.push(parsed);
            continue;
        }
        match v {
            Value::Array(conds) => {
                if conds.is_empty() {
                    return Err(err("Empty arrays are not allowed"));
                }
                let mut parsed = Vec::with_capacity(conds.len());
                for c in conds {
                    parsed.push(parse_cond(c)?);
                }
                node.keys.push((key.clone(), Rule::Leaf(parsed)));
            }
            Value::Object(_) => {
                if scope == Scope::MessageAttributes {
                    return Err("Filter policy scope MessageAttributes does not support nested filter policy".into());
                }
                node.keys.push((key.clone(), Rule::Nested(parse_node(v, scope)?)));
            }
            _ => return Err(err(format!("\"{key}\" must be an object or an array"))),
        }
    }
    Ok(node)
}

fn check_number(n: f64) -> Result<f64, String> {
    if !(-MAX_NUMBER..=MAX_NUMBER).contains(&n) {
        return Err(err("Numeric value must be between -1.0E9 and 1.0E9 inclusive"));
    }
    Ok(n)
}

fn json_number(n: &serde_json::Number) -> Result<f64, String> {
    check_number(n.as_f64().unwrap_or(f64::NAN))
}

fn string_of<'a>(v: &'a Value, op: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| err(format!("{op} match pattern must be a string")))
}

/// The one `{"operator": argument}` of a match expression.
fn single_entry(ops: &serde_json::Map<String, Value>) -> Result<(&String, &Value), String> {
    match ops.iter().next() {
        Some(entry) if ops.len() == 1 => Ok(entry),
        _ => Err(err("Only one key allowed in match expression")),
    }
}

fn parse_cond(c: &Value) -> Result<Cond, String> {
    Ok(match c {
        Value::String(s) => Cond::Str(s.clone()),
        Value::Number(n) => Cond::Num(json_number(n)?),
        Value::Bool(b) => Cond::Bool(*b),
        Value::Null => Cond::Null,
        Value::Array(_) => return Err(err("Match value must be String, number, true, false, or null")),
        Value::Object(ops) => {
            let (op, arg) = single_entry(ops)?;
            match op.as_str() {
                "prefix" => Cond::Prefix(string_of(arg, "prefix")?.to_string()),
                "suffix" => Cond::Suffix(string_of(arg, "suffix")?.to_string()),
                "equals-ignore-case" => Cond::EqualsIgnoreCase(string_of(arg, "equals-ignore-case")?.to_string()),
                "exists" => match arg {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => return Err(err("exists match pattern must be either true or false.")),
                },
                "anything-but" => Cond::AnythingBut(parse_anything_but(arg)?),
                "numeric" => Cond::Numeric(parse_numeric(arg)?),
                // AWS reports a non-string CIDR with the prefix message.
                "cidr" => Cond::Cidr(parse_cidr(string_of(arg, "prefix")?)?),
                other => return Err(err(format!("Unrecognized match type {other}"))),
            }
        }
    })
}

fn parse_anything_but(arg: &Value) -> Result<Negated, String> {
    Ok(match arg {
        Value::String(s) => Negated::Values(vec![Lit::Str(s.clone())]),
        Value::Number(n) => Negated::Values(vec![Lit::Num(json_number(n)?)]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(err("Empty arrays are not allowed"));
            }
            let mut lits = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Value::String(s) => lits.push(Lit::Str(s.clone())),
                    Value::Number(n) => lits.push(Lit::Num(json_number(n)?)),
                    _ => return Err(err("Inside anything but list, start|null|boolean is not supported.")),
                }
            }
            Negated::Values(lits)
        }
        Value::Object(inner) => {
            let (op, iarg) = single_entry(inner)?;
            match op.as_str() {
                "prefix" => Negated::Prefix(string_of(iarg, "prefix")?.to_string()),
                "equals-ignore-case" => Negated::EqualsIgnoreCase(string_of(iarg, "equals-ignore-case")?.to_string()),
                // Includes `suffix`: AWS rejects `{"anything-but": {"suffix": …}}` this way (recorded
                // AWS responses in LocalStack's snapshot tests, 2024), so a policy accepted here is
                // accepted there too.
                other => return Err(err(format!("Unsupported anything-but pattern: {other}"))),
            }
        }
        _ => return Err(err("Value of anything-but must be an array or single string/number value.")),
    })
}

/// `["op", n]` or `[">"|">=", low, "<"|"<=", high]`, checked in AWS's order and with its messages.
fn parse_numeric(arg: &Value) -> Result<Vec<(NumOp, f64)>, String> {
    let Value::Array(items) = arg else {
        return Err(err("Value of numeric must be an array."));
    };
    let Some(first) = items.first() else {
        return Err(err("Invalid member in numeric match: ]"));
    };
    let op_name = first.as_str().ok_or_else(|| err(format!("Invalid member in numeric match: {}", shown(first))))?;
    let op = match op_name {
        "=" => NumOp::Eq,
        ">" => NumOp::Gt,
        ">=" => NumOp::Ge,
        "<" => NumOp::Lt,
        "<=" => NumOp::Le,
        other => return Err(err(format!("Unrecognized numeric range operator: {other}"))),
    };
    let value_of = |v: Option<&Value>, name: &str| -> Result<f64, String> {
        let name = if name == "=" { "equals" } else { name };
        match v {
            Some(Value::Number(n)) => json_number(n),
            _ => Err(err(format!("Value of {name} must be numeric"))),
        }
    };
    let low = value_of(items.get(1), op_name)?;
    if items.len() == 2 {
        return Ok(vec![(op, low)]);
    }
    if !matches!(op, NumOp::Gt | NumOp::Ge) {
        return Err(err("Too many elements in numeric expression"));
    }
    let second = &items[2];
    let op2_name = second.as_str().ok_or_else(|| err(format!("Bad value in numeric range: {}", shown(second))))?;
    let op2 = match op2_name {
        "<" => NumOp::Lt,
        "<=" => NumOp::Le,
        other => return Err(err(format!("Bad numeric range operator: {other}"))),
    };
    let high = value_of(items.get(3), op2_name)?;
    if high <= low {
        return Err(err("Bottom must be less than top"));
    }
    if items.len() > 4 {
        return Err(err("Too many terms in numeric range expression"));
    }
    Ok(vec![(op, low), (op2, high)])
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let mut parts = s.split('/');
    let (Some(ip), Some(bits), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err("Malformed CIDR, one '/' required"));
    };
    let bits: u32 = bits.trim().parse().map_err(|_| err("Malformed CIDR, mask bits must be an integer"))?;
    let addr: IpAddr = ip.trim().parse().map_err(|_| err(format!("Nonstandard IP address: {ip}")))?;
    let (v6, width, value) = match addr {
        IpAddr::V4(a) => (false, 32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, 128, u128::from(a)),
    };
    if bits > width {
        return Err(err(format!("Malformed CIDR, mask bits must be between 0 and {width}")));
    }
    // The `bits` leading bits of a `width`-bit address.
    let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    let mask = all & !all.checked_shr(bits).unwrap_or(0);
    Ok(Cidr { v6, net: value & mask, mask })
}

/// The key names the 5-key limit counts: the names at this level and in its `$or` branches, not
/// those below a nested key (attribute policies have no nesting, so that is every name; a nested
/// body policy counts its parent keys only).
fn collect_keys(node: &Node, out: &mut Vec<String>) {
    for (k, _) in &node.keys {
        out.push(k.clone());
    }
    for alts in &node.ors {
        for alt in alts {
            collect_keys(alt, out);
        }
    }
}

/// AWS's complexity: the product over every value array of its length times its nesting depth
/// (1 at the top level); the branches of an `$or` add up.
fn combinations(node: &Node, depth: usize) -> usize {
    let mut total: usize = 1;
    for (_, rule) in &node.keys {
        let n = match rule {
            Rule::Leaf(conds) => conds.len().saturating_mul(depth),
            Rule::Nested(inner) => combinations(inner, depth + 1),
        };
        total = total.saturating_mul(n.max(1));
    }
    for alts in &node.ors {
        let sum = alts.iter().map(|a| combinations(a, depth)).fold(0usize, usize::saturating_add);
        total = total.saturating_mul(sum.max(1));
    }
    total
}

fn num_matches(ops: &[(NumOp, f64)], x: f64) -> bool {
    ops.iter().all(|(op, n)| match op {
        NumOp::Eq => num_eq(x, *n),
        NumOp::Gt => x > *n && !num_eq(x, *n),
        NumOp::Ge => x >= *n || num_eq(x, *n),
        NumOp::Lt => x < *n && !num_eq(x, *n),
        NumOp::Le => x <= *n || num_eq(x, *n),
    })
}

fn negated_matches(n: &Negated, v: &MsgValue) -> bool {
    match (n, v) {
        (Negated::Values(lits), MsgValue::Str(x)) => !lits.iter().any(|l| matches!(l, Lit::Str(s) if s == x)),
        (Negated::Values(lits), MsgValue::Num(x)) => !lits.iter().any(|l| matches!(l, Lit::Num(n) if num_eq(*n, *x))),
        (Negated::Prefix(p), MsgValue::Str(x)) => !x.starts_with(p.as_str()),
        (Negated::EqualsIgnoreCase(p), MsgValue::Str(x)) => p.to_lowercase() != x.to_lowercase(),
        _ => false,
    }
}

fn cond_matches_one(c: &Cond, v: &MsgValue) -> bool {
    match (c, v) {
        (Cond::Str(s), MsgValue::Str(x)) => s == x,
        (Cond::Num(n), MsgValue::Num(x)) => num_eq(*n, *x),
        (Cond::Bool(b), MsgValue::Bool(x)) => b == x,
        (Cond::Null, MsgValue::Null) => true,
        (Cond::Prefix(p), MsgValue::Str(x)) => x.starts_with(p.as_str()),
        (Cond::Suffix(p), MsgValue::Str(x)) => x.ends_with(p.as_str()),
        (Cond::EqualsIgnoreCase(p), MsgValue::Str(x)) => p.to_lowercase() == x.to_lowercase(),
        (Cond::AnythingBut(n), v) => negated_matches(n, v),
        (Cond::Numeric(ops), MsgValue::Num(x)) => num_matches(ops, *x),
        (Cond::Cidr(net), MsgValue::Str(x)) => net.contains(x),
        _ => false,
    }
}

/// AWS compares numbers to five decimal places.
fn num_eq(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.000005
}

/// True when a key "exists" for `{"exists": true}`: present with a non-null, non-empty value.
fn present(found: Option<&Found>) -> bool {
    found.is_some_and(|f| {
        !f.values.is_empty()
            && !f.values.iter().all(|v| matches!(v, MsgValue::Null) || matches!(v, MsgValue::Str(s) if s.is_empty()))
    })
}

/// `absent_ok`: whether `{"exists": false}` may match a missing key here (attribute scope: only
/// when the message has at least one attribute, as AWS documents).
fn leaf_matches(conds: &[Cond], found: Option<&Found>, absent_ok: bool) -> bool {
    conds.iter().any(|c| match (c, found) {
        (Cond::Exists(true), f) => present(f),
        (Cond::Exists(false), f) => !present(f) && absent_ok,
        (_, None) => false,
        (Cond::AnythingBut(_), Some(f)) if f.every_element => {
            !f.values.is_empty() && f.values.iter().all(|v| cond_matches_one(c, v))
        }
        (c, Some(f)) => f.values.iter().any(|v| cond_matches_one(c, v)),
    })
}

fn match_flat(node: &Node, lookup: &dyn Fn(&str) -> Option<Found>, any_attribute: bool) -> bool {
    for (key, rule) in &node.keys {
        let ok = match rule {
            Rule::Leaf(conds) => leaf_matches(conds, lookup(key).as_ref(), any_attribute),
            Rule::Nested(_) => false,
        };
        if !ok {
            return false;
        }
    }
    node.ors.iter().all(|alts| alts.iter().any(|alt| match_flat(alt, lookup, any_attribute)))
}

/// Leaf values under `v`: a scalar, or the scalars of an array. None when absent or an object.
fn leaf_values(v: Option<&Value>) -> Option<Found> {
    let values = match v? {
        Value::Array(items) => {
            let vals: Vec<MsgValue> = items.iter().filter_map(json_scalar).collect();
            if vals.is_empty() && !items.is_empty() {
                return None;
            }
            vals
        }
        Value::Object(_) => return None,
        other => vec![json_scalar(other)?],
    };
    Some(Found { values, every_element: false })
}

fn match_nested(node: &Node, obj: Option<&Value>) -> bool {
    for (key, rule) in &node.keys {
        let child = obj.and_then(|o| o.get(key));
        let ok = match rule {
            Rule::Leaf(conds) => leaf_matches(conds, leaf_values(child).as_ref(), true),
            Rule::Nested(inner) => match child {
                Some(Value::Array(items)) => items.iter().any(|i| i.is_object() && match_nested(inner, Some(i))),
                Some(v @ Value::Object(_)) => match_nested(inner, Some(v)),
                _ => match_nested(inner, None),
            },
        };
        if !ok {
            return false;
        }
    }
    node.ors.iter().all(|alts| alts.iter().any(|alt| match_nested(alt, obj)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        list.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
    }

    fn a(policy: &str, list: &[(&str, &str, &str)]) -> bool {
        FilterPolicy::parse(policy, Scope::MessageAttributes).unwrap().matches_attributes(&attrs(list))
    }

    fn b(policy: &str, body: &str) -> bool {
        FilterPolicy::parse(policy, Scope::MessageBody).unwrap().matches_body(body)
    }

    fn attr_err(policy: &str) -> String {
        FilterPolicy::parse(policy, Scope::MessageAttributes).unwrap_err()
    }

    fn body_err(policy: &str) -> String {
        FilterPolicy::parse(policy, Scope::MessageBody).unwrap_err()
    }

    #[test]
    fn exact_string_and_number() {
        assert!(a(r#"{"color":["red","blue"]}"#, &[("color", "String", "red")]));
        assert!(!a(r#"{"color":["red","blue"]}"#, &[("color", "String", "green")]));
        assert!(!a(r#"{"color":["red"]}"#, &[]));
        assert!(a(r#"{"price":[100]}"#, &[("price", "Number", "100.0")]));
        assert!(!a(r#"{"price":[100]}"#, &[("price", "Number", "101")]));
        assert!(!a(r#"{"price":[100]}"#, &[("price", "String", "100")]));
        // Every key must match.
        assert!(!a(r#"{"color":["red"],"size":["L"]}"#, &[("color", "String", "red"), ("size", "String", "M")]));
        assert!(a(r#"{"color":["red"],"size":["L"]}"#, &[("color", "String", "red"), ("size", "String", "L")]));
    }

    #[test]
    fn string_array_attributes() {
        assert!(a(r#"{"tags":["b"]}"#, &[("tags", "String.Array", r#"["a","b"]"#)]));
        assert!(!a(r#"{"tags":["c"]}"#, &[("tags", "String.Array", r#"["a","b"]"#)]));
        assert!(a(r#"{"n":[{"numeric":[">",2]}]}"#, &[("n", "String.Array", r#"[1,3]"#)]));
    }

    #[test]
    fn prefix_suffix_ignore_case() {
        assert!(a(r#"{"c":[{"prefix":"rub"}]}"#, &[("c", "String", "rubber")]));
        assert!(!a(r#"{"c":[{"prefix":"rub"}]}"#, &[("c", "String", "grub")]));
        assert!(a(r#"{"c":[{"suffix":".png"}]}"#, &[("c", "String", "a.png")]));
        assert!(!a(r#"{"c":[{"suffix":".png"}]}"#, &[("c", "String", "a.jpg")]));
        assert!(a(r#"{"c":[{"equals-ignore-case":"ReD"}]}"#, &[("c", "String", "rEd")]));
        assert!(!a(r#"{"c":[{"equals-ignore-case":"ReD"}]}"#, &[("c", "String", "reds")]));
    }

    #[test]
    fn anything_but() {
        assert!(a(r#"{"c":[{"anything-but":"red"}]}"#, &[("c", "String", "blue")]));
        assert!(!a(r#"{"c":[{"anything-but":"red"}]}"#, &[("c", "String", "red")]));
        assert!(!a(r#"{"c":[{"anything-but":["red","blue"]}]}"#, &[("c", "String", "blue")]));
        assert!(a(r#"{"c":[{"anything-but":["red","blue"]}]}"#, &[("c", "String", "green")]));
        assert!(!a(r#"{"c":[{"anything-but":["red"]}]}"#, &[]), "anything-but needs the attribute");
        assert!(a(r#"{"n":[{"anything-but":[1,2]}]}"#, &[("n", "Number", "3")]));
        assert!(!a(r#"{"n":[{"anything-but":[1,2]}]}"#, &[("n", "Number", "2")]));
        assert!(!a(r#"{"n":[{"anything-but":100}]}"#, &[("n", "Number", "1.0e2")]));
    }

    #[test]
    fn anything_but_prefix_and_ignore_case() {
        let prefix = r#"{"c":[{"anything-but":{"prefix":"order-"}}]}"#;
        assert!(a(prefix, &[("c", "String", "data-entry")]));
        assert!(a(prefix, &[("c", "String", "order_number")]));
        assert!(!a(prefix, &[("c", "String", "order-cancelled")]));
        assert!(!a(prefix, &[]), "anything-but needs the attribute");

        let ignore_case = r#"{"c":[{"anything-but":{"equals-ignore-case":"Tennis"}}]}"#;
        assert!(a(ignore_case, &[("c", "String", "rugby")]));
        assert!(!a(ignore_case, &[("c", "String", "TENNIS")]));
        assert!(!a(ignore_case, &[("c", "String", "tennis")]));
        assert!(b(ignore_case, r#"{"c":"golf"}"#));
        assert!(!b(ignore_case, r#"{"c":"tEnNiS"}"#));
        // Not a string attribute: nothing to compare, no match.
        assert!(!a(prefix, &[("c", "Number", "5")]));
    }

    #[test]
    fn anything_but_on_string_arrays_needs_every_element() {
        // AWS: "For String.Array type attributes, it matches if none of the array elements are
        // listed in the policy property."
        let p = r#"{"i":[{"anything-but":["rugby","tennis"]}]}"#;
        assert!(a(p, &[("i", "String.Array", r#"["baseball","football"]"#)]));
        assert!(!a(p, &[("i", "String.Array", r#"["rugby","baseball"]"#)]));
        assert!(!a(r#"{"i":[{"anything-but":{"prefix":"ru"}}]}"#, &[("i", "String.Array", r#"["golf","rugby"]"#)]));
        // In a JSON body an array matches when one element does (numeric anything-but example).
        assert!(b(r#"{"price":[{"anything-but":[100,500]}]}"#, r#"{"price":[100,50]}"#));
        assert!(!b(r#"{"price":[{"anything-but":[100,500]}]}"#, r#"{"price":100}"#));
    }

    #[test]
    fn numeric_ranges_and_equals() {
        let p = r#"{"price":[{"numeric":[">",0,"<=",150]}]}"#;
        assert!(a(p, &[("price", "Number", "150")]));
        assert!(a(p, &[("price", "Number", "0.5")]));
        assert!(!a(p, &[("price", "Number", "0")]));
        assert!(!a(p, &[("price", "Number", "150.1")]));
        let eq = r#"{"p":[{"numeric":["=",301.5]}]}"#;
        assert!(a(eq, &[("p", "Number", "301.50")]));
        assert!(a(eq, &[("p", "Number", "3.015e2")]));
        assert!(!a(eq, &[("p", "Number", "301.6")]));
        assert!(b(eq, r#"{"p":3.015e2}"#));
        assert!(!b(eq, r#"{"p":"301.5"}"#));
        assert!(a(r#"{"p":[{"numeric":[">=",10]}]}"#, &[("p", "Number", "10")]));
        assert!(!a(r#"{"p":[{"numeric":["<",10]}]}"#, &[("p", "Number", "10")]));
        assert!(!a(r#"{"p":[{"numeric":["<",10]}]}"#, &[("p", "String", "5")]));
        assert!(a(r#"{"p":[{"numeric":["<",0]}]}"#, &[("p", "Number", "-0.5")]));
    }

    #[test]
    fn exists() {
        assert!(a(r#"{"k":[{"exists":true}]}"#, &[("k", "String", "x")]));
        assert!(!a(r#"{"k":[{"exists":true}]}"#, &[("o", "String", "x")]));
        assert!(a(r#"{"k":[{"exists":false}]}"#, &[("o", "String", "x")]));
        assert!(!a(r#"{"k":[{"exists":false}]}"#, &[("k", "Number", "1")]));
        // AWS: "exists": false only matches if at least one attribute is present.
        assert!(!a(r#"{"k":[{"exists":false}]}"#, &[]));
        // Body scope: the key must have a non-null, non-empty value to exist.
        assert!(b(r#"{"k":[{"exists":true}]}"#, r#"{"k":"v"}"#));
        assert!(!b(r#"{"k":[{"exists":true}]}"#, r#"{"k":null}"#));
        assert!(!b(r#"{"k":[{"exists":true}]}"#, r#"{"k":""}"#));
        assert!(b(r#"{"k":[{"exists":false}]}"#, r#"{"o":1}"#));
        assert!(b(r#"{"k":[{"exists":false}]}"#, r#"{"k":null}"#));
        assert!(!b(r#"{"k":[{"exists":false}]}"#, r#"{"k":0}"#));
        // anything-but combined with "exists": false (AWS's documented combination).
        let p = r#"{"k":[{"anything-but":["a"]},{"exists":false}]}"#;
        assert!(a(p, &[("o", "String", "x")]));
        assert!(a(p, &[("k", "String", "b")]));
        assert!(!a(p, &[("k", "String", "a")]));
    }

    #[test]
    fn or_operator() {
        let p = r#"{"source":["shop"],"$or":[{"color":["red"]},{"size":[{"numeric":[">",10]}]}]}"#;
        assert!(a(p, &[("source", "String", "shop"), ("color", "String", "red")]));
        assert!(a(p, &[("source", "String", "shop"), ("size", "Number", "11")]));
        assert!(!a(p, &[("source", "String", "shop"), ("size", "Number", "9")]));
        assert!(!a(p, &[("source", "String", "web"), ("color", "String", "red")]));
    }

    #[test]
    fn cidr_v4_and_v6() {
        let v4 = r#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#;
        assert!(a(v4, &[("ip", "String", "10.0.0.255")]));
        assert!(a(v4, &[("ip", "String", "10.0.0.0")]));
        assert!(!a(v4, &[("ip", "String", "10.0.1.1")]));
        assert!(!a(v4, &[("ip", "String", "::ffff:10.0.0.1")]));
        assert!(!a(v4, &[("ip", "String", "not an ip")]));
        let v6 = r#"{"ip":[{"cidr":"2001:db8:1234:1a00::/64"}]}"#;
        assert!(a(v6, &[("ip", "String", "2001:db8:1234:1a00::1")]));
        assert!(a(v6, &[("ip", "String", "2001:0db8:1234:1a00:ffff:ffff:ffff:ffff")]));
        assert!(!a(v6, &[("ip", "String", "2001:db8:1234:1a01::1")]));
        assert!(!a(v6, &[("ip", "String", "10.0.0.1")]));
        assert!(b(v6, r#"{"ip":"2001:db8:1234:1a00::42"}"#));
        assert!(a(r#"{"ip":[{"cidr":"0.0.0.0/0"}]}"#, &[("ip", "String", "8.8.8.8")]));
        assert!(a(r#"{"ip":[{"cidr":"::/0"}]}"#, &[("ip", "String", "fe80::1")]));
        assert!(a(r#"{"ip":[{"cidr":"fe80::1/128"}]}"#, &[("ip", "String", "fe80::1")]));
        assert!(!a(r#"{"ip":[{"cidr":"fe80::1/128"}]}"#, &[("ip", "String", "fe80::2")]));
        // Host bits in the network address are masked off.
        assert!(a(r#"{"ip":[{"cidr":"192.168.1.77/16"}]}"#, &[("ip", "String", "192.168.200.1")]));
    }

    #[test]
    fn body_scope_nested() {
        let p = r#"{"order":{"status":["paid"],"total":[{"numeric":[">=",100]}]}}"#;
        assert!(b(p, r#"{"order":{"status":"paid","total":120}}"#));
        assert!(!b(p, r#"{"order":{"status":"paid","total":20}}"#));
        assert!(!b(p, r#"{"order":{"status":"new","total":120}}"#));
        assert!(!b(p, r#"{"other":1}"#));
        assert!(!b(p, "not json"));
        assert!(b(r#"{"items":{"sku":["A"]}}"#, r#"{"items":[{"sku":"B"},{"sku":"A"}]}"#));
        assert!(b(r#"{"tags":["x"]}"#, r#"{"tags":["y","x"]}"#));
        assert!(b(r#"{"flag":[true],"gone":[null]}"#, r#"{"flag":true,"gone":null}"#));
        assert!(b(r#"{"a":{"b":[{"exists":false}]}}"#, r#"{"c":1}"#));
        assert!(b(r#"{"$or":[{"a":["1"]},{"b":{"c":["2"]}}]}"#, r#"{"b":{"c":"2"}}"#));
    }

    #[test]
    fn aws_error_messages() {
        // Reasons as AWS words them (recorded against AWS by LocalStack's snapshot tests).
        let cases = [
            (r#"{"key":[["value"]]}"#, "FilterPolicy: Match value must be String, number, true, false, or null"),
            (r#"{"key":[{"wrong-operator":true}]}"#, "FilterPolicy: Unrecognized match type wrong-operator"),
            (
                r#"{"key":[{"suffix":"value","prefix":"value2"}]}"#,
                "FilterPolicy: Only one key allowed in match expression",
            ),
            (r#"{"key":[]}"#, "FilterPolicy: Empty arrays are not allowed"),
            (r#"{"key":[{"suffix":100}]}"#, "FilterPolicy: suffix match pattern must be a string"),
            (r#"{"key":[{"suffix":null}]}"#, "FilterPolicy: suffix match pattern must be a string"),
            (r#"{"key":[{"suffix":["test","test2"]}]}"#, "FilterPolicy: suffix match pattern must be a string"),
            (r#"{"key":"value"}"#, "FilterPolicy: \"key\" must be an object or an array"),
            (r#"{"key":[{"cidr":["bad-filter"]}]}"#, "FilterPolicy: prefix match pattern must be a string"),
            (r#"{"key":[{"cidr":"bad-filter"}]}"#, "FilterPolicy: Malformed CIDR, one '/' required"),
            (r#"{"key":[{"cidr":"bad-filter/64"}]}"#, "FilterPolicy: Nonstandard IP address: bad-filter"),
            (r#"{"key":[{"cidr":"bad-/64filter"}]}"#, "FilterPolicy: Malformed CIDR, mask bits must be an integer"),
            (r#"{"key":[{"cidr":"xx.11.xx/8"}]}"#, "FilterPolicy: Nonstandard IP address: xx.11.xx"),
            (
                r#"{"key":[{"cidr":"xxxx:db8:1234:1a00::/64"}]}"#,
                "FilterPolicy: Nonstandard IP address: xxxx:db8:1234:1a00::",
            ),
            (r#"{"key":[{"cidr":"10.0.0.0/33"}]}"#, "FilterPolicy: Malformed CIDR, mask bits must be between 0 and 32"),
            (r#"{"key":[{"cidr":"::/129"}]}"#, "FilterPolicy: Malformed CIDR, mask bits must be between 0 and 128"),
            (r#"{"key":[{"numeric":[]}]}"#, "FilterPolicy: Invalid member in numeric match: ]"),
            (r#"{"key":[{"numeric":["operator"]}]}"#, "FilterPolicy: Unrecognized numeric range operator: operator"),
            (r#"{"key":[{"numeric":[1,"<="]}]}"#, "FilterPolicy: Invalid member in numeric match: 1"),
            (r#"{"key":[{"numeric":["=","000"]}]}"#, "FilterPolicy: Value of equals must be numeric"),
            (r#"{"key":[{"numeric":[">="]}]}"#, "FilterPolicy: Value of >= must be numeric"),
            (r#"{"key":[{"numeric":["<",100,">",10]}]}"#, "FilterPolicy: Too many elements in numeric expression"),
            (r#"{"key":[{"numeric":[">=",1,">",2]}]}"#, "FilterPolicy: Bad numeric range operator: >"),
            (r#"{"key":[{"numeric":[">",3,"<",1]}]}"#, "FilterPolicy: Bottom must be less than top"),
            (r#"{"key":[{"numeric":[">",20,"<="]}]}"#, "FilterPolicy: Value of <= must be numeric"),
            (r#"{"key":[{"numeric":[">",20,30]}]}"#, "FilterPolicy: Bad value in numeric range: 30"),
            (r#"{"key":[{"numeric":[">",20,"test"]}]}"#, "FilterPolicy: Bad numeric range operator: test"),
            (r#"{"key":[{"numeric":[">","20","<","30"]}]}"#, "FilterPolicy: Value of > must be numeric"),
            (r#"{"key":[{"numeric":[">",20,"<","30"]}]}"#, "FilterPolicy: Value of < must be numeric"),
            (
                r#"{"key":[{"numeric":[">",20,"<",30,"<",50]}]}"#,
                "FilterPolicy: Too many terms in numeric range expression",
            ),
            (r#"{"key":[{"exists":null}]}"#, "FilterPolicy: exists match pattern must be either true or false."),
            (r#"{"key":[{"exists":"no"}]}"#, "FilterPolicy: exists match pattern must be either true or false."),
            (
                r#"{"key":[{"anything-but":{"wrong-operator":null}}]}"#,
                "FilterPolicy: Unsupported anything-but pattern: wrong-operator",
            ),
            (
                r#"{"key":[{"anything-but":{"exists":false}}]}"#,
                "FilterPolicy: Unsupported anything-but pattern: exists",
            ),
            (
                r#"{"key":[{"anything-but":{"wildcard":"*ball"}}]}"#,
                "FilterPolicy: Unsupported anything-but pattern: wildcard",
            ),
            (r#"{"key":[{"anything-but":{"prefix":false}}]}"#, "FilterPolicy: prefix match pattern must be a string"),
            (r#"{"key":[{"anything-but":{"suffix":1}}]}"#, "FilterPolicy: Unsupported anything-but pattern: suffix"),
            (
                r#"{"key":[{"anything-but":{"suffix":"test"}}]}"#,
                "FilterPolicy: Unsupported anything-but pattern: suffix",
            ),
            (
                r#"{"key":[{"anything-but":{"equals-ignore-case":[]}}]}"#,
                "FilterPolicy: equals-ignore-case match pattern must be a string",
            ),
            (
                r#"{"key":[{"anything-but":[true]}]}"#,
                "FilterPolicy: Inside anything but list, start|null|boolean is not supported.",
            ),
            (
                r#"{"key":[{"anything-but":null}]}"#,
                "FilterPolicy: Value of anything-but must be an array or single string/number value.",
            ),
            (r#"{"key":[{"wildcard":"*.png"}]}"#, "FilterPolicy: Unrecognized match type wildcard"),
            (
                r#"{"key":[{"numeric":[">",5e10]}]}"#,
                "FilterPolicy: Numeric value must be between -1.0E9 and 1.0E9 inclusive",
            ),
            (r#"{"a":{"b":["x"]}}"#, "Filter policy scope MessageAttributes does not support nested filter policy"),
        ];
        for (policy, want) in cases {
            assert_eq!(attr_err(policy), want, "{policy}");
        }
        assert!(attr_err("not json").starts_with("FilterPolicy: failed to parse JSON."));
        assert_eq!(attr_err("[1]"), "FilterPolicy: Filter policy must be a JSON object");
        assert_eq!(
            invalid_parameter("FilterPolicy: Filter policy is too complex", true),
            "Invalid parameter: Attributes Reason: FilterPolicy: Filter policy is too complex"
        );
        assert_eq!(
            invalid_parameter("FilterPolicy: Filter policy is too complex", false),
            "Invalid parameter: FilterPolicy: Filter policy is too complex"
        );
        assert_eq!(
            Scope::parse("RandomValue").unwrap_err(),
            "FilterPolicyScope: Invalid value [RandomValue]. Please use either MessageBody or MessageAttributes"
        );
    }

    #[test]
    fn key_limit() {
        let six = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#;
        assert_eq!(attr_err(six), "FilterPolicy: Filter policy can not have more than 5 keys");
        assert_eq!(body_err(six), "FilterPolicy: Filter policy can not have more than 5 keys");
        let five = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"]}"#;
        assert!(FilterPolicy::parse(five, Scope::MessageAttributes).is_ok());
        // Attribute scope: the keys inside $or branches count too.
        let or = r#"{"a":["1"],"b":["1"],"c":["1"],"$or":[{"d":["1"]},{"e":["1"],"f":["1"]}]}"#;
        assert_eq!(attr_err(or), "FilterPolicy: Filter policy can not have more than 5 keys");
        let or_same = r#"{"a":["1"],"$or":[{"b":["1"]},{"b":["2"],"c":["1"]}]}"#;
        assert!(FilterPolicy::parse(or_same, Scope::MessageAttributes).is_ok());
        // Body scope: a nested policy counts its parent keys only.
        let nested = r#"{"a":{"x":["1"],"y":["1"],"z":["1"]},"b":{"x":["1"],"y":["1"],"z":["1"]}}"#;
        assert!(FilterPolicy::parse(nested, Scope::MessageBody).is_ok());
    }

    #[test]
    fn combination_limit() {
        let vals: Vec<String> = (0..13).map(|i| format!("\"v{i}\"")).collect();
        let list = vals.join(",");
        let big = format!(r#"{{"a":[{list}],"b":[{list}]}}"#);
        assert_eq!(attr_err(&big), "FilterPolicy: Filter policy is too complex");
        let ok = format!(r#"{{"a":[{list}],"b":["x"]}}"#);
        assert!(FilterPolicy::parse(&ok, Scope::MessageAttributes).is_ok());
        // One array of 150 values is allowed, 151 is not.
        let n = |k: usize| (0..k).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        assert!(FilterPolicy::parse(&format!(r#"{{"a":[{}]}}"#, n(150)), Scope::MessageAttributes).is_ok());
        assert_eq!(attr_err(&format!(r#"{{"a":[{}]}}"#, n(151))), "FilterPolicy: Filter policy is too complex");
        // AWS's nested example: 4 values three levels deep and 3 values two levels deep make
        // 3 x 4 x 2 x 3 = 72 combinations.
        let aws = r#"{"key_a":{"key_b":{"key_c":["value_one","value_two","value_three","value_four"]}},"key_d":{"key_e":["value_one","value_two","value_three"]}}"#;
        let parsed = FilterPolicy::parse(aws, Scope::MessageBody).unwrap();
        assert_eq!(combinations(&parsed.root, 1), 72);
        // ... so depth counts: 2 values at depth 3 (6) times 26 at the top level is 156.
        let deep = format!(r#"{{"a":{{"b":{{"c":["1","2"]}}}},"d":[{}]}}"#, n(26));
        assert_eq!(body_err(&deep), "FilterPolicy: Filter policy is too complex");
        // Nesting depth alone: two values 100 levels down are 200 combinations; deeper than the
        // parser's 128 levels is not JSON we accept.
        let nest = |levels: usize, leaf: &str| {
            let mut p = leaf.to_string();
            for _ in 0..levels {
                p = format!(r#"{{"k":{p}}}"#);
            }
            p
        };
        assert!(FilterPolicy::parse(&nest(74, r#"["x","y"]"#), Scope::MessageBody).is_ok());
        assert_eq!(body_err(&nest(99, r#"["x","y"]"#)), "FilterPolicy: Filter policy is too complex");
        assert!(body_err(&nest(200, r#"["x"]"#)).starts_with("FilterPolicy: failed to parse JSON."));
        // $or branches add up: 2 x (3 + 4) = 14.
        let or = r#"{"a":["1","2"],"$or":[{"b":["1","2","3"]},{"c":["1","2","3","4"]}]}"#;
        let parsed = FilterPolicy::parse(or, Scope::MessageAttributes).unwrap();
        assert_eq!(combinations(&parsed.root, 1), 14);
        let too_long = format!(r#"{{"a":["{}"]}}"#, "x".repeat(MAX_POLICY_BYTES));
        assert_eq!(attr_err(&too_long), "FilterPolicy: Filter policy is too long");
    }

    #[test]
    fn other_shapes() {
        for bad in
            [r#"{"$or":[{"a":["1"]}]}"#, r#"{"$or":{"a":["1"]}}"#, r#"{"$or":[{"a":["1"]},"x"]}"#, r#"{"a":[{}]}"#]
        {
            assert!(FilterPolicy::parse(bad, Scope::MessageAttributes).is_err(), "{bad}");
        }
        assert!(FilterPolicy::parse(r#"{"a":{"b":["x"]}}"#, Scope::MessageBody).is_ok());
        assert!(FilterPolicy::parse("{}", Scope::MessageAttributes).unwrap().matches_attributes(&[]));
    }
}
