//! Property and fuzz tests (test builds only) of SNS filter policies, which subscribers send as
//! arbitrary JSON text: parsing any text, and matching any message against any accepted policy,
//! never panics and takes bounded time (issue 24, item 4). arbtest picks a new seed each run and
//! prints it when a property fails; each property has a bounded budget.

use serde_json::{json, Value};
use sluice_fuzzkit::{Result as AResult, Unstructured};

use crate::filter::{FilterPolicy, Scope};

const BUDGET_MS: u64 = 700;

/// Runs `property` for [`BUDGET_MS`] (or `SLUICE_FUZZ_MS`, to fuzz longer by hand).
fn run(property: impl FnMut(&mut Unstructured<'_>) -> AResult<()>) {
    sluice_fuzzkit::run(BUDGET_MS, None, property);
}

const KEYS: &[&str] = &["a", "b", "store", "price", "$or", "ip", ""];
const OPERATORS: &[&str] =
    &["prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr", "wildcard", "x"];

fn number(u: &mut Unstructured<'_>) -> AResult<Value> {
    let n = *u.choose(&[0.0, -1.0, 1.5, 1e9, 1e9 + 1.0, -1e9, 1e308, -1e308, 5e-324, 2.0e19])?;
    Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
}

fn text(u: &mut Unstructured<'_>) -> AResult<String> {
    if u.ratio(1, 2)? {
        Ok(u.choose(&["", "a", "10.0.0.0/8", "::1/128", "1.2.3.4/33", "x/y/z", "/", "=", ">", "<=", "ÄÖ", "\u{0}"])?
            .to_string())
    } else {
        u.arbitrary()
    }
}

/// A value in a policy: scalars, operator objects with arguments of any type, nested objects.
fn value(u: &mut Unstructured<'_>, depth: u32) -> AResult<Value> {
    Ok(match u.int_in_range(0..=9)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => number(u)?,
        3 => Value::String(text(u)?),
        4 | 5 if depth < 6 => {
            let op = *u.choose(OPERATORS)?;
            let arg = match u.int_in_range(0..=3)? {
                0 => json!([
                    u.choose(&["=", ">", ">=", "<", "<=", "?"])?,
                    number(u)?,
                    u.choose(&["<", "<="])?,
                    number(u)?
                ]),
                1 => json!([number(u)?, text(u)?]),
                _ => value(u, depth + 1)?,
            };
            json!({ op: arg })
        }
        6 | 7 if depth < 6 => {
            Value::Array((0..u.int_in_range(0..=4)?).map(|_| value(u, depth + 1)).collect::<AResult<_>>()?)
        }
        _ if depth < 6 => object(u, depth + 1)?,
        _ => Value::String("leaf".into()),
    })
}

fn object(u: &mut Unstructured<'_>, depth: u32) -> AResult<Value> {
    let mut map = serde_json::Map::new();
    for _ in 0..u.int_in_range(0..=4)? {
        map.insert(u.choose(KEYS)?.to_string(), value(u, depth)?);
    }
    Ok(Value::Object(map))
}

/// A policy shaped as AWS's are: keys to arrays of conditions, nested keys, `$or` branches.
fn shaped(u: &mut Unstructured<'_>, depth: u32) -> AResult<Value> {
    let mut map = serde_json::Map::new();
    for _ in 0..u.int_in_range(1..=3)? {
        let key = *u.choose(KEYS)?;
        let v = if key == "$or" && depth < 3 {
            Value::Array((0..u.int_in_range(1..=3)?).map(|_| shaped(u, depth + 1)).collect::<AResult<_>>()?)
        } else if depth < 3 && u.ratio(1, 4)? {
            shaped(u, depth + 1)?
        } else {
            Value::Array((0..u.int_in_range(1..=4)?).map(|_| value(u, 5)).collect::<AResult<_>>()?)
        };
        map.insert(key.to_string(), v);
    }
    Ok(Value::Object(map))
}

#[test]
fn filter_policies_of_any_text_parse_or_are_refused_and_match_without_panics() {
    run(|u| {
        let policy_text = match u.int_in_range(0..=4)? {
            0 => text(u)?,
            2 | 3 => shaped(u, 0)?.to_string(),
            // Nesting deeper than the JSON parser follows.
            1 => format!("{}{}", "{\"a\":".repeat(u.int_in_range(1..=300)?), "\"x\"}"),
            _ => object(u, 0)?.to_string(),
        };
        let scope = if u.arbitrary()? { Scope::MessageAttributes } else { Scope::MessageBody };
        let started = std::time::Instant::now();
        let Ok(policy) = FilterPolicy::parse(&policy_text, scope) else {
            return Ok(());
        };
        for _ in 0..4 {
            let attrs: Vec<(String, String, String)> = (0..u.int_in_range(0..=3)?)
                .map(|_| {
                    let ty = u.choose(&["String", "Number", "String.Array", "Binary", "Number.x", ""])?.to_string();
                    Ok((u.choose(KEYS)?.to_string(), ty, text(u)?))
                })
                .collect::<AResult<_>>()?;
            policy.matches_attributes(&attrs);
            let body = match u.int_in_range(0..=2)? {
                0 => text(u)?,
                1 => object(u, 0)?.to_string(),
                _ => shaped(u, 0)?.to_string(),
            };
            policy.matches_body(&body);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "slow policy {policy_text}");
        Ok(())
    });
}
