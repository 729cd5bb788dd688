//! SNS subscription filter policies: parsing with AWS's limits, and matching against message
//! attributes (`FilterPolicyScope` = `MessageAttributes`, the default) or the JSON message body
//! (`MessageBody`).
//!
//! Supported operators: exact string / number / boolean / null match, `prefix`, `suffix`,
//! `equals-ignore-case`, `anything-but` (a value, a list, `{"prefix": ..}`, `{"suffix": ..}`),
//! `numeric` (`=`, and ranges with `>`, `>=`, `<`, `<=`), `exists`, `cidr` (IPv4), `$or`, and nested
//! keys (body scope only).

use serde_json::Value;

/// Where the policy looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, String> {
        match s {
            "MessageAttributes" => Ok(Scope::MessageAttributes),
            "MessageBody" => Ok(Scope::MessageBody),
            _ => Err(
                "Invalid parameter: Attributes Reason: FilterPolicyScope: Invalid value ["
                    .to_string()
                    + s
                    + "]. Please use either MessageBody or MessageAttributes",
            ),
        }
    }
}

/// AWS: at most 5 keys in a policy.
pub const MAX_KEYS: usize = 5;
/// AWS: at most 150 combinations of values.
pub const MAX_COMBINATIONS: usize = 150;
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
    AnythingBut(Vec<Lit>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    Numeric(Vec<(NumOp, f64)>),
    Exists(bool),
    Cidr(u32, u32),
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

fn err(reason: impl std::fmt::Display) -> String {
    format!("Invalid parameter: FilterPolicy: {reason}")
}

impl FilterPolicy {
    /// Parses and validates `text` for `scope`; the error is the AWS InvalidParameter message.
    pub fn parse(text: &str, scope: Scope) -> Result<FilterPolicy, String> {
        if text.len() > 256 * 1024 {
            return Err(err("Filter policy is too long"));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| err(format!("failed to parse JSON. {e}")))?;
        let Value::Object(_) = value else {
            return Err(err("Filter policy must be a JSON object"));
        };
        let root = parse_node(&value, scope, 0)?;
        let mut paths = Vec::new();
        collect_paths(&root, "", &mut paths);
        paths.sort();
        paths.dedup();
        if paths.len() > MAX_KEYS {
            return Err(err(format!(
                "Filter policy can not have more than {MAX_KEYS} keys"
            )));
        }
        if combinations(&root) > MAX_COMBINATIONS {
            return Err(err("Filter policy is too complex"));
        }
        Ok(FilterPolicy { root, scope })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Matches message attributes: `(name, data type, string value)` (Binary attributes are skipped).
    pub fn matches_attributes(&self, attrs: &[(String, String, String)]) -> bool {
        let lookup = |key: &str| -> Option<Vec<MsgValue>> {
            let (_, ty, v) = attrs.iter().find(|(n, _, _)| n == key)?;
            if ty.starts_with("Binary") {
                return None;
            }
            if ty.starts_with("Number") {
                return Some(
                    v.trim()
                        .parse::<f64>()
                        .map(MsgValue::Num)
                        .into_iter()
                        .collect(),
                );
            }
            if ty == "String.Array" {
                let parsed: Value = serde_json::from_str(v).ok()?;
                let Value::Array(items) = parsed else {
                    return None;
                };
                return Some(items.iter().filter_map(json_scalar).collect());
            }
            Some(vec![MsgValue::Str(v.clone())])
        };
        match_flat(&self.root, &lookup)
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

fn parse_node(value: &Value, scope: Scope, depth: usize) -> Result<Node, String> {
    let Value::Object(map) = value else {
        return Err(err("Filter policy must be a JSON object"));
    };
    if depth > 32 {
        return Err(err("Filter policy is nested too deeply"));
    }
    let mut node = Node::default();
    for (key, v) in map {
        if key == "$or" {
            let Value::Array(alts) = v else {
                return Err(err("$or must be an array of objects"));
            };
            if alts.len() < 2 {
                return Err(err("$or must have at least 2 alternatives"));
            }
            let mut parsed = Vec::new();
            for alt in alts {
                if !alt.is_object() {
                    return Err(err("$or must be an array of objects"));
                }
                parsed.push(parse_node(alt, scope, depth + 1)?);
            }
            node.ors.push(parsed);
            continue;
        }
        match v {
            Value::Array(conds) => {
                if conds.is_empty() {
                    return Err(err(format!("Empty arrays are not allowed (key {key})")));
                }
                let mut parsed = Vec::new();
                for c in conds {
                    parsed.push(parse_cond(c, key)?);
                }
                node.keys.push((key.clone(), Rule::Leaf(parsed)));
            }
            Value::Object(_) => {
                if scope == Scope::MessageAttributes {
                    return Err("Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy".into());
                }
                node.keys
                    .push((key.clone(), Rule::Nested(parse_node(v, scope, depth + 1)?)));
            }
            _ => {
                return Err(err(format!(
                    "Match value must be String, number, true, false, or null (key {key})"
                )))
            }
        }
    }
    Ok(node)
}

fn check_number(n: f64) -> Result<f64, String> {
    if !(-MAX_NUMBER..=MAX_NUMBER).contains(&n) {
        return Err(err(
            "Numeric value must be between -1.0E9 and 1.0E9 inclusive",
        ));
    }
    Ok(n)
}

fn number_of(v: &Value) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| err(format!("Value of numeric must be a number, got {v}")))
        .and_then(check_number)
}

fn string_of<'a>(v: &'a Value, op: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| err(format!("{op} match pattern must be a string")))
}

fn parse_cond(c: &Value, key: &str) -> Result<Cond, String> {
    Ok(match c {
        Value::String(s) => Cond::Str(s.clone()),
        Value::Number(n) => Cond::Num(check_number(n.as_f64().unwrap_or(f64::NAN))?),
        Value::Bool(b) => Cond::Bool(*b),
        Value::Null => Cond::Null,
        Value::Array(_) => {
            return Err(err(format!(
                "Match value must be String, number, true, false, or null (key {key})"
            )))
        }
        Value::Object(ops) => {
            if ops.len() != 1 {
                return Err(err("Only one key allowed in match expression"));
            }
            let (op, arg) = ops.iter().next().expect("one entry");
            match op.as_str() {
                "prefix" => Cond::Prefix(string_of(arg, "prefix")?.to_string()),
                "suffix" => Cond::Suffix(string_of(arg, "suffix")?.to_string()),
                "equals-ignore-case" => {
                    Cond::EqualsIgnoreCase(string_of(arg, "equals-ignore-case")?.to_string())
                }
                "exists" => match arg {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => return Err(err("exists match pattern must be either true or false.")),
                },
                "anything-but" => match arg {
                    Value::String(s) => Cond::AnythingBut(vec![Lit::Str(s.clone())]),
                    Value::Number(n) => Cond::AnythingBut(vec![Lit::Num(check_number(
                        n.as_f64().unwrap_or(f64::NAN),
                    )?)]),
                    Value::Array(items) => {
                        if items.is_empty() {
                            return Err(err("Empty arrays are not allowed"));
                        }
                        let mut lits = Vec::new();
                        for i in items {
                            match i {
                                Value::String(s) => lits.push(Lit::Str(s.clone())),
                                Value::Number(n) => lits.push(Lit::Num(check_number(n.as_f64().unwrap_or(f64::NAN))?)),
                                _ => return Err(err("Inside anything but list, start|null|boolean is not supported.")),
                            }
                        }
                        Cond::AnythingBut(lits)
                    }
                    Value::Object(inner) => {
                        if inner.len() != 1 {
                            return Err(err("Only one key allowed in match expression"));
                        }
                        let (iop, iarg) = inner.iter().next().expect("one entry");
                        match iop.as_str() {
                            "prefix" => {
                                Cond::AnythingButPrefix(string_of(iarg, "prefix")?.to_string())
                            }
                            "suffix" => {
                                Cond::AnythingButSuffix(string_of(iarg, "suffix")?.to_string())
                            }
                            other => {
                                return Err(err(format!(
                                    "Unsupported anything-but pattern: {other}"
                                )))
                            }
                        }
                    }
                    _ => return Err(err("anything-but: Value must be a string, number or list")),
                },
                "numeric" => Cond::Numeric(parse_numeric(arg)?),
                "cidr" => {
                    let s = string_of(arg, "cidr")?;
                    parse_cidr(s)
                        .ok_or_else(|| err(format!("Malformed CIDR, one '/' required: {s}")))?
                }
                other => return Err(err(format!("Unrecognized match type {other}"))),
            }
        }
    })
}

fn parse_numeric(arg: &Value) -> Result<Vec<(NumOp, f64)>, String> {
    let Value::Array(items) = arg else {
        return Err(err("Value of numeric must be an array."));
    };
    let op_of = |v: &Value| -> Result<NumOp, String> {
        match v.as_str() {
            Some("=") => Ok(NumOp::Eq),
            Some(">") => Ok(NumOp::Gt),
            Some(">=") => Ok(NumOp::Ge),
            Some("<") => Ok(NumOp::Lt),
            Some("<=") => Ok(NumOp::Le),
            _ => Err(err(format!("Unrecognized numeric range operator: {v}"))),
        }
    };
    match items.len() {
        2 => Ok(vec![(op_of(&items[0])?, number_of(&items[1])?)]),
        4 => {
            let (a, x) = (op_of(&items[0])?, number_of(&items[1])?);
            let (b, y) = (op_of(&items[2])?, number_of(&items[3])?);
            if !matches!(a, NumOp::Gt | NumOp::Ge) {
                return Err(err(
                    "Bad numeric range operator: the first operator must be > or >=",
                ));
            }
            if !matches!(b, NumOp::Lt | NumOp::Le) {
                return Err(err(
                    "Bad numeric range operator: the second operator must be < or <=",
                ));
            }
            if x >= y {
                return Err(err("Bottom must be less than top"));
            }
            Ok(vec![(a, x), (b, y)])
        }
        _ => Err(err("Value of numeric must be an array of 2 or 4 elements.")),
    }
}

fn parse_cidr(s: &str) -> Option<Cond> {
    let (ip, bits) = s.split_once('/')?;
    let bits: u32 = bits.parse().ok().filter(|b| *b <= 32)?;
    let ip = parse_ipv4(ip)?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Some(Cond::Cidr(ip & mask, mask))
}

fn parse_ipv4(s: &str) -> Option<u32> {
    let addr: std::net::Ipv4Addr = s.trim().parse().ok()?;
    Some(u32::from(addr))
}

fn collect_paths(node: &Node, prefix: &str, out: &mut Vec<String>) {
    for (k, rule) in &node.keys {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match rule {
            Rule::Leaf(_) => out.push(path),
            Rule::Nested(n) => collect_paths(n, &path, out),
        }
    }
    for alts in &node.ors {
        for alt in alts {
            collect_paths(alt, prefix, out);
        }
    }
}

fn combinations(node: &Node) -> usize {
    let mut total: usize = 1;
    for (_, rule) in &node.keys {
        let n = match rule {
            Rule::Leaf(conds) => conds.len(),
            Rule::Nested(inner) => combinations(inner),
        };
        total = total.saturating_mul(n.max(1));
    }
    for alts in &node.ors {
        let sum: usize = alts
            .iter()
            .map(combinations)
            .fold(0usize, |a, b| a.saturating_add(b));
        total = total.saturating_mul(sum.max(1));
    }
    total
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
        (Cond::AnythingBut(lits), MsgValue::Str(x)) => {
            !lits.iter().any(|l| matches!(l, Lit::Str(s) if s == x))
        }
        (Cond::AnythingBut(lits), MsgValue::Num(x)) => !lits
            .iter()
            .any(|l| matches!(l, Lit::Num(n) if num_eq(*n, *x))),
        (Cond::AnythingButPrefix(p), MsgValue::Str(x)) => !x.starts_with(p.as_str()),
        (Cond::AnythingButSuffix(p), MsgValue::Str(x)) => !x.ends_with(p.as_str()),
        (Cond::Numeric(ops), MsgValue::Num(x)) => ops.iter().all(|(op, n)| match op {
            NumOp::Eq => num_eq(*x, *n),
            NumOp::Gt => *x > *n && !num_eq(*x, *n),
            NumOp::Ge => *x >= *n || num_eq(*x, *n),
            NumOp::Lt => *x < *n && !num_eq(*x, *n),
            NumOp::Le => *x <= *n || num_eq(*x, *n),
        }),
        (Cond::Cidr(net, mask), MsgValue::Str(x)) => {
            parse_ipv4(x).is_some_and(|ip| ip & mask == *net)
        }
        _ => false,
    }
}

/// AWS compares numbers to five decimal places.
fn num_eq(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.000005
}

fn leaf_matches(conds: &[Cond], values: Option<&[MsgValue]>) -> bool {
    conds.iter().any(|c| match (c, values) {
        (Cond::Exists(want), v) => *want == v.is_some(),
        (_, None) => false,
        (c, Some(vals)) => vals.iter().any(|v| cond_matches_one(c, v)),
    })
}

fn match_flat(node: &Node, lookup: &dyn Fn(&str) -> Option<Vec<MsgValue>>) -> bool {
    for (key, rule) in &node.keys {
        let ok = match rule {
            Rule::Leaf(conds) => leaf_matches(conds, lookup(key).as_deref()),
            Rule::Nested(_) => false,
        };
        if !ok {
            return false;
        }
    }
    node.ors
        .iter()
        .all(|alts| alts.iter().any(|alt| match_flat(alt, lookup)))
}

/// Leaf values under `v`: a scalar, or the scalars of an array. None when absent or an object.
fn leaf_values(v: Option<&Value>) -> Option<Vec<MsgValue>> {
    match v? {
        Value::Array(items) => {
            let vals: Vec<MsgValue> = items.iter().filter_map(json_scalar).collect();
            if vals.is_empty() && !items.is_empty() {
                None
            } else {
                Some(vals)
            }
        }
        Value::Object(_) => None,
        other => json_scalar(other).map(|s| vec![s]),
    }
}

fn match_nested(node: &Node, obj: Option<&Value>) -> bool {
    for (key, rule) in &node.keys {
        let child = obj.and_then(|o| o.get(key));
        let ok = match rule {
            Rule::Leaf(conds) => leaf_matches(conds, leaf_values(child).as_deref()),
            Rule::Nested(inner) => match child {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|i| i.is_object() && match_nested(inner, Some(i))),
                Some(v @ Value::Object(_)) => match_nested(inner, Some(v)),
                _ => match_nested(inner, None),
            },
        };
        if !ok {
            return false;
        }
    }
    node.ors
        .iter()
        .all(|alts| alts.iter().any(|alt| match_nested(alt, obj)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        list.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    }

    fn a(policy: &str, list: &[(&str, &str, &str)]) -> bool {
        FilterPolicy::parse(policy, Scope::MessageAttributes)
            .unwrap()
            .matches_attributes(&attrs(list))
    }

    fn b(policy: &str, body: &str) -> bool {
        FilterPolicy::parse(policy, Scope::MessageBody)
            .unwrap()
            .matches_body(body)
    }

    #[test]
    fn exact_string_and_number() {
        assert!(a(
            r#"{"color":["red","blue"]}"#,
            &[("color", "String", "red")]
        ));
        assert!(!a(
            r#"{"color":["red","blue"]}"#,
            &[("color", "String", "green")]
        ));
        assert!(!a(r#"{"color":["red"]}"#, &[]));
        assert!(a(r#"{"price":[100]}"#, &[("price", "Number", "100.0")]));
        assert!(!a(r#"{"price":[100]}"#, &[("price", "Number", "101")]));
        assert!(!a(r#"{"price":[100]}"#, &[("price", "String", "100")]));
        // Every key must match.
        assert!(!a(
            r#"{"color":["red"],"size":["L"]}"#,
            &[("color", "String", "red"), ("size", "String", "M")]
        ));
        assert!(a(
            r#"{"color":["red"],"size":["L"]}"#,
            &[("color", "String", "red"), ("size", "String", "L")]
        ));
    }

    #[test]
    fn string_array_attributes() {
        assert!(a(
            r#"{"tags":["b"]}"#,
            &[("tags", "String.Array", r#"["a","b"]"#)]
        ));
        assert!(!a(
            r#"{"tags":["c"]}"#,
            &[("tags", "String.Array", r#"["a","b"]"#)]
        ));
        assert!(a(
            r#"{"n":[{"numeric":[">",2]}]}"#,
            &[("n", "String.Array", r#"[1,3]"#)]
        ));
    }

    #[test]
    fn prefix_suffix_ignore_case() {
        assert!(a(
            r#"{"c":[{"prefix":"rub"}]}"#,
            &[("c", "String", "rubber")]
        ));
        assert!(!a(
            r#"{"c":[{"prefix":"rub"}]}"#,
            &[("c", "String", "grub")]
        ));
        assert!(a(
            r#"{"c":[{"suffix":".png"}]}"#,
            &[("c", "String", "a.png")]
        ));
        assert!(!a(
            r#"{"c":[{"suffix":".png"}]}"#,
            &[("c", "String", "a.jpg")]
        ));
        assert!(a(
            r#"{"c":[{"equals-ignore-case":"ReD"}]}"#,
            &[("c", "String", "rEd")]
        ));
        assert!(!a(
            r#"{"c":[{"equals-ignore-case":"ReD"}]}"#,
            &[("c", "String", "reds")]
        ));
    }

    #[test]
    fn anything_but() {
        assert!(a(
            r#"{"c":[{"anything-but":"red"}]}"#,
            &[("c", "String", "blue")]
        ));
        assert!(!a(
            r#"{"c":[{"anything-but":"red"}]}"#,
            &[("c", "String", "red")]
        ));
        assert!(!a(
            r#"{"c":[{"anything-but":["red","blue"]}]}"#,
            &[("c", "String", "blue")]
        ));
        assert!(a(
            r#"{"c":[{"anything-but":["red","blue"]}]}"#,
            &[("c", "String", "green")]
        ));
        assert!(
            !a(r#"{"c":[{"anything-but":["red"]}]}"#, &[]),
            "anything-but needs the attribute"
        );
        assert!(a(
            r#"{"n":[{"anything-but":[1,2]}]}"#,
            &[("n", "Number", "3")]
        ));
        assert!(!a(
            r#"{"n":[{"anything-but":[1,2]}]}"#,
            &[("n", "Number", "2")]
        ));
        assert!(a(
            r#"{"c":[{"anything-but":{"prefix":"ord-"}}]}"#,
            &[("c", "String", "inv-1")]
        ));
        assert!(!a(
            r#"{"c":[{"anything-but":{"prefix":"ord-"}}]}"#,
            &[("c", "String", "ord-1")]
        ));
        assert!(!a(
            r#"{"c":[{"anything-but":{"suffix":".tmp"}}]}"#,
            &[("c", "String", "x.tmp")]
        ));
    }

    #[test]
    fn numeric_ranges() {
        let p = r#"{"price":[{"numeric":[">",0,"<=",150]}]}"#;
        assert!(a(p, &[("price", "Number", "150")]));
        assert!(a(p, &[("price", "Number", "0.5")]));
        assert!(!a(p, &[("price", "Number", "0")]));
        assert!(!a(p, &[("price", "Number", "150.1")]));
        assert!(a(
            r#"{"p":[{"numeric":["=",3.5]}]}"#,
            &[("p", "Number", "3.50")]
        ));
        assert!(a(
            r#"{"p":[{"numeric":[">=",10]}]}"#,
            &[("p", "Number", "10")]
        ));
        assert!(!a(
            r#"{"p":[{"numeric":["<",10]}]}"#,
            &[("p", "Number", "10")]
        ));
        assert!(!a(
            r#"{"p":[{"numeric":["<",10]}]}"#,
            &[("p", "String", "5")]
        ));
    }

    #[test]
    fn exists() {
        assert!(a(r#"{"k":[{"exists":true}]}"#, &[("k", "String", "x")]));
        assert!(!a(r#"{"k":[{"exists":true}]}"#, &[]));
        assert!(a(r#"{"k":[{"exists":false}]}"#, &[]));
        assert!(!a(r#"{"k":[{"exists":false}]}"#, &[("k", "Number", "1")]));
    }

    #[test]
    fn or_operator() {
        let p = r#"{"source":["shop"],"$or":[{"color":["red"]},{"size":[{"numeric":[">",10]}]}]}"#;
        assert!(a(
            p,
            &[("source", "String", "shop"), ("color", "String", "red")]
        ));
        assert!(a(
            p,
            &[("source", "String", "shop"), ("size", "Number", "11")]
        ));
        assert!(!a(
            p,
            &[("source", "String", "shop"), ("size", "Number", "9")]
        ));
        assert!(!a(
            p,
            &[("source", "String", "web"), ("color", "String", "red")]
        ));
    }

    #[test]
    fn cidr() {
        assert!(a(
            r#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#,
            &[("ip", "String", "10.0.0.255")]
        ));
        assert!(!a(
            r#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#,
            &[("ip", "String", "10.0.1.1")]
        ));
    }

    #[test]
    fn body_scope_nested() {
        let p = r#"{"order":{"status":["paid"],"total":[{"numeric":[">=",100]}]}}"#;
        assert!(b(p, r#"{"order":{"status":"paid","total":120}}"#));
        assert!(!b(p, r#"{"order":{"status":"paid","total":20}}"#));
        assert!(!b(p, r#"{"order":{"status":"new","total":120}}"#));
        assert!(!b(p, r#"{"other":1}"#));
        assert!(!b(p, "not json"));
        assert!(b(
            r#"{"items":{"sku":["A"]}}"#,
            r#"{"items":[{"sku":"B"},{"sku":"A"}]}"#
        ));
        assert!(b(r#"{"tags":["x"]}"#, r#"{"tags":["y","x"]}"#));
        assert!(b(
            r#"{"flag":[true],"gone":[null]}"#,
            r#"{"flag":true,"gone":null}"#
        ));
        assert!(b(r#"{"a":{"b":[{"exists":false}]}}"#, r#"{"c":1}"#));
        assert!(b(
            r#"{"$or":[{"a":["1"]},{"b":{"c":["2"]}}]}"#,
            r#"{"b":{"c":"2"}}"#
        ));
    }

    #[test]
    fn limits_and_errors() {
        let six = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#;
        assert!(FilterPolicy::parse(six, Scope::MessageAttributes)
            .unwrap_err()
            .contains("5 keys"));
        let vals: Vec<String> = (0..13).map(|i| format!("\"v{i}\"")).collect();
        let list = vals.join(",");
        let big = format!(r#"{{"a":[{list}],"b":[{list}]}}"#);
        assert!(FilterPolicy::parse(&big, Scope::MessageAttributes)
            .unwrap_err()
            .contains("too complex"));
        let ok = format!(r#"{{"a":[{list}],"b":["x"]}}"#);
        assert!(FilterPolicy::parse(&ok, Scope::MessageAttributes).is_ok());
        for bad in [
            "not json",
            "[1]",
            r#"{"a":[]}"#,
            r#"{"a":"x"}"#,
            r#"{"a":[{"bogus":1}]}"#,
            r#"{"a":[{"numeric":["<",5,">",1]}]}"#,
            r#"{"a":[{"numeric":[">",5,"<",1]}]}"#,
            r#"{"a":[{"numeric":[">",5e10]}]}"#,
            r#"{"a":[{"exists":"yes"}]}"#,
            r#"{"a":[{"prefix":1}]}"#,
            r#"{"a":{"b":["x"]}}"#,
        ] {
            assert!(
                FilterPolicy::parse(bad, Scope::MessageAttributes).is_err(),
                "{bad} should be rejected"
            );
        }
        assert!(FilterPolicy::parse(r#"{"a":{"b":["x"]}}"#, Scope::MessageBody).is_ok());
        assert!(FilterPolicy::parse("{}", Scope::MessageAttributes)
            .unwrap()
            .matches_attributes(&[]));
    }
}
