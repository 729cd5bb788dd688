//! The IAM policy language, evaluated: queue policies (the `Policy` attribute that AddPermission /
//! RemovePermission also edit), SNS topic policies and the identity policies of access keys.
//!
//! Pure: no I/O, no clock (the request's time is a field of [`Request`]), so the protocol layer
//! (SQS), sluice-sns (topics, SNS→SQS deliveries) and tests share one evaluator.
//!
//! - [`Policy::parse`] reads a document once (callers cache the result: a queue keeps its parsed
//!   policy beside the text, a key its identity policy), refusing what AWS would refuse to store.
//! - [`Policy::evaluate`] answers one statement-level question: does an explicit `Deny` apply, an
//!   `Allow`, or neither ([`Decision`]).
//! - [`authorize`] combines an identity policy and a resource policy as AWS's "policy evaluation
//!   logic" does (docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
//!   an explicit deny in either wins; in the resource's own account either may allow; across
//!   accounts both must (and some actions are never granted across accounts, see
//!   [`Request::same_account_only`]).
//!
//! What is understood: `Effect`; `Principal` / `NotPrincipal` (`"*"`, `{"AWS": "*"}`, an account
//! id, `arn:aws:iam::ACCOUNT:root`, a user or role ARN, `{"Service": "sns.amazonaws.com"}`);
//! `Action` / `NotAction` with `*` and `?`, case-insensitive; `Resource` / `NotResource` ARNs with
//! wildcards; `Condition` with the String, Arn, Numeric, Date, Bool, IpAddress and Null operator
//! families, their `…IfExists` forms and the `ForAnyValue:` / `ForAllValues:` qualifiers, on the
//! global keys `aws:SourceArn`, `aws:SourceAccount`, `aws:SourceOwner`, `aws:PrincipalAccount`,
//! `aws:PrincipalArn`, `aws:SecureTransport`, `aws:SourceIp`, `aws:CurrentTime` and
//! `aws:EpochTime`. A key sluice does not know is absent from the request (a condition on it is
//! false, its negated and `…IfExists` forms true), as AWS treats keys a request lacks.

use std::net::IpAddr;

use serde_json::Value;

mod matching;
#[cfg(test)]
mod tests;

use matching::{glob, Cidr};

/// Why a document is not a policy sluice can enforce. The text is for the operator (logs, and the
/// `InvalidAttributeValue` that SetQueueAttributes answers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn bad(what: impl Into<String>) -> PolicyError {
    PolicyError(what.into())
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    /// None: no `Principal` element (an identity policy's statements have none).
    principal: Option<Principals>,
    /// `NotPrincipal`: the statement applies to everyone *but* the principals listed.
    not_principal: bool,
    /// Lower-cased patterns (`sqs:send*`).
    actions: Vec<String>,
    not_action: bool,
    /// None: no `Resource` element (a queue or topic policy is about its own resource).
    resources: Option<Vec<String>>,
    not_resource: bool,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
enum Principals {
    Everyone,
    Listed { aws: Vec<String>, services: Vec<String> },
}

/// Who makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    /// A signed request: the key's account and principal ARN.
    Aws { account: &'a str, arn: &'a str },
    /// An AWS service acting for a resource, e.g. `sns.amazonaws.com` delivering a topic's message.
    Service(&'a str),
}

/// One request, as the policy language sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: Principal<'a>,
    /// `service:Operation`, e.g. `sqs:SendMessage` (batch operations as their singular action).
    pub action: &'a str,
    /// The resource's ARN (for actions on no resource, e.g. ListQueues, the account's prefix
    /// `arn:aws:sqs:REGION:ACCOUNT:`).
    pub resource: &'a str,
    /// The account that owns the resource.
    pub resource_account: &'a str,
    /// `aws:SourceArn`: the resource a service acts for (an SNS topic delivering to a queue).
    pub source_arn: Option<&'a str>,
    /// `aws:SourceAccount`: the account of that resource.
    pub source_account: Option<&'a str>,
    /// `aws:SecureTransport`: the request came over TLS.
    pub secure_transport: Option<bool>,
    /// `aws:SourceIp`: the peer's address.
    pub source_ip: Option<IpAddr>,
    /// `aws:CurrentTime` / `aws:EpochTime`, in milliseconds since the epoch.
    pub now_ms: u64,
}

impl<'a> Request<'a> {
    /// The principal's account (None for a service principal).
    pub fn principal_account(&self) -> Option<&'a str> {
        match self.principal {
            Principal::Aws { account, .. } => Some(account),
            Principal::Service(_) => None,
        }
    }

    /// Actions AWS never grants to another account, whatever the queue policy says: SQS's
    /// "Limitations of Amazon SQS custom policies", section "Cross-account access"
    /// (docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-limitations-of-custom-policies.html),
    /// which lists AddPermission, CancelMessageMoveTask, CreateQueue, DeleteQueue,
    /// ListMessageMoveTasks, ListQueues, ListQueueTags, RemovePermission, SetQueueAttributes,
    /// StartMessageMoveTask, TagQueue and UntagQueue. (AddPermission's `Actions` still accept
    /// ListQueueTags; the limitation wins, as on AWS.)
    pub fn same_account_only(&self) -> bool {
        const SQS_OWNER_ONLY: &[&str] = &[
            "addpermission",
            "cancelmessagemovetask",
            "createqueue",
            "deletequeue",
            "listmessagemovetasks",
            "listqueues",
            "listqueuetags",
            "removepermission",
            "setqueueattributes",
            "startmessagemovetask",
            "tagqueue",
            "untagqueue",
        ];
        match self.action.split_once(':') {
            Some((service, op)) if service.eq_ignore_ascii_case("sqs") => {
                SQS_OWNER_ONLY.iter().any(|a| a.eq_ignore_ascii_case(op))
            }
            _ => false,
        }
    }
}

/// What one policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allow,
    /// A `Deny` statement applies.
    Deny,
    /// No statement applies (the implicit deny, unless another policy allows).
    NotApplicable,
}

impl Policy {
    /// Parses a policy document (JSON). Refuses what cannot be enforced as written: a statement
    /// without `Effect` or `Action`/`NotAction`, an unknown condition operator, a malformed CIDR
    /// or date, a principal of a kind sluice cannot match (`Federated`, `CanonicalUser`).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("the policy is not JSON: {e}")))?;
        let doc = doc.as_object().ok_or_else(|| bad("the policy is not a JSON object"))?;
        let statements = match doc.get("Statement") {
            None => Vec::new(),
            Some(Value::Array(list)) => list.iter().map(Statement::parse).collect::<Result<_, _>>()?,
            Some(one @ Value::Object(_)) => vec![Statement::parse(one)?],
            Some(_) => return Err(bad("Statement must be an object or a list of objects")),
        };
        Ok(Policy { statements })
    }

    /// A policy with no statements (it allows and denies nothing).
    pub fn empty() -> Policy {
        Policy { statements: Vec::new() }
    }

    /// Whether a `Deny` applies to `req`, else an `Allow`, else neither. Statements with a
    /// `Principal` are matched against `req.principal`; those without (identity policies) apply
    /// to whoever holds the policy.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if s.applies(req) {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotApplicable
        }
    }
}

/// Why a request is denied; each has AWS's wording (see [`Denial::message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    ExplicitIdentity,
    ExplicitResource,
    /// Nothing allows it and the identity policy is what would have to.
    NoIdentityAllow,
    /// Across accounts (or for a service principal) only the resource policy can allow.
    NoResourceAllow,
}

impl Denial {
    /// AWS's message for a denial, as measured on AWS (Floci's "Design: resource policy
    /// enforcement", floci-io/floci, shapes R1 and R2, 2026-10-02): `User: <principal> is not
    /// authorized to perform: sqs:sendmessage on resource: <arn> because no identity-based policy
    /// allows the sqs:sendmessage action` / `… with an explicit deny in a resource-based policy`;
    /// the cross-account form `because no resource-based policy allows …` as reported in
    /// microsoft/aspire#3333. SQS writes the action in lower case; SNS as `SNS:Publish`.
    pub fn message(self, principal: &str, action: &str, resource: &str) -> String {
        let why = match self {
            Denial::ExplicitIdentity => "with an explicit deny in an identity-based policy".to_string(),
            Denial::ExplicitResource => "with an explicit deny in a resource-based policy".to_string(),
            Denial::NoIdentityAllow => format!("because no identity-based policy allows the {action} action"),
            Denial::NoResourceAllow => format!("because no resource-based policy allows the {action} action"),
        };
        format!("User: {principal} is not authorized to perform: {action} on resource: {resource} {why}")
    }
}

/// AWS's decision for `req`, given the caller's identity policy and the resource's policy.
///
/// - `identity`: None means the key has no identity policy, which sluice reads as the account
///   root's full access (AWS's root user needs no policy in its own account); such a key is still
///   subject to explicit denies in the resource policy and, across accounts, needs the resource
///   policy's allow. A service principal has no identity policy: only the resource policy counts.
/// - `resource`: the queue's or topic's policy, if it has one.
pub fn authorize(identity: Option<&Policy>, resource: Option<&Policy>, req: &Request<'_>) -> Result<(), Denial> {
    let on_resource = resource.map_or(Decision::NotApplicable, |p| p.evaluate(req));
    let on_identity = match (req.principal, identity) {
        (Principal::Service(_), _) => Decision::NotApplicable,
        (Principal::Aws { .. }, None) => Decision::Allow,
        (Principal::Aws { .. }, Some(p)) => p.evaluate(req),
    };
    if on_identity == Decision::Deny {
        return Err(Denial::ExplicitIdentity);
    }
    if on_resource == Decision::Deny {
        return Err(Denial::ExplicitResource);
    }
    let same_account = req.principal_account() == Some(req.resource_account);
    if same_account {
        if on_identity == Decision::Allow || on_resource == Decision::Allow {
            return Ok(());
        }
        return Err(Denial::NoIdentityAllow);
    }
    if matches!(req.principal, Principal::Service(_)) {
        return if on_resource == Decision::Allow { Ok(()) } else { Err(Denial::NoResourceAllow) };
    }
    if req.same_account_only() || on_resource != Decision::Allow {
        return Err(Denial::NoResourceAllow);
    }
    if on_identity != Decision::Allow {
        return Err(Denial::NoIdentityAllow);
    }
    Ok(())
}

/// A value of the request for a condition key.
enum Ctx<'a> {
    Str(&'a str),
    Bool(bool),
    Ip(IpAddr),
    TimeMs(u64),
    /// `aws:EpochTime`: whole seconds.
    Num(u64),
}

impl Ctx<'_> {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Ctx::Str(s) => (*s).into(),
            Ctx::Bool(b) => b.to_string().into(),
            Ctx::Ip(ip) => ip.to_string().into(),
            Ctx::TimeMs(ms) => format_iso(*ms).into(),
            Ctx::Num(n) => n.to_string().into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    SourceArn,
    SourceAccount,
    SourceOwner,
    PrincipalAccount,
    PrincipalArn,
    SecureTransport,
    SourceIp,
    CurrentTime,
    EpochTime,
    /// A key sluice does not provide: always absent.
    Unknown,
}

impl Key {
    fn parse(name: &str) -> Key {
        match name.to_ascii_lowercase().as_str() {
            "aws:sourcearn" => Key::SourceArn,
            "aws:sourceaccount" => Key::SourceAccount,
            "aws:sourceowner" => Key::SourceOwner,
            "aws:principalaccount" => Key::PrincipalAccount,
            "aws:principalarn" => Key::PrincipalArn,
            "aws:securetransport" => Key::SecureTransport,
            "aws:sourceip" => Key::SourceIp,
            "aws:currenttime" => Key::CurrentTime,
            "aws:epochtime" => Key::EpochTime,
            _ => Key::Unknown,
        }
    }

    fn value<'a>(self, req: &Request<'a>) -> Option<Ctx<'a>> {
        match self {
            Key::SourceArn => req.source_arn.map(Ctx::Str),
            Key::SourceAccount => req.source_account.map(Ctx::Str),
            // SNS's default topic policy conditions on `AWS:SourceOwner`: the account acting.
            Key::SourceOwner => req.source_account.or(req.principal_account()).map(Ctx::Str),
            Key::PrincipalAccount => req.principal_account().map(Ctx::Str),
            Key::PrincipalArn => match req.principal {
                Principal::Aws { arn, .. } => Some(Ctx::Str(arn)),
                Principal::Service(_) => None,
            },
            Key::SecureTransport => req.secure_transport.map(Ctx::Bool),
            Key::SourceIp => req.source_ip.map(Ctx::Ip),
            Key::CurrentTime => Some(Ctx::TimeMs(req.now_ms)),
            Key::EpochTime => Some(Ctx::Num(req.now_ms / 1000)),
            Key::Unknown => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Eq => ord == Equal,
            Cmp::Lt => ord == Less,
            Cmp::Le => ord != Greater,
            Cmp::Gt => ord == Greater,
            Cmp::Ge => ord != Less,
        }
    }
}

/// A condition's values, parsed for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    StringEquals(Vec<String>),
    StringEqualsIgnoreCase(Vec<String>),
    /// `StringLike`, and the Arn operators (ArnEquals matches wildcards like ArnLike, per IAM's
    /// condition operator reference).
    Like(Vec<String>),
    Numeric(Cmp, Vec<f64>),
    /// Milliseconds since the epoch.
    Date(Cmp, Vec<i64>),
    Bool(Vec<bool>),
    Ip(Vec<Cidr>),
    /// `Null`: true → the key must be absent, false → present.
    Null(Vec<bool>),
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    key: Key,
    test: Test,
    /// The `Not…` operators: true when no value matches (and when the key is absent).
    negated: bool,
    /// `…IfExists`: true when the key is absent.
    if_exists: bool,
    /// `ForAllValues:`: true when the key is absent.
    for_all: bool,
}

impl Condition {
    fn holds(&self, req: &Request<'_>) -> bool {
        if let Test::Null(values) = &self.test {
            let absent = self.key.value(req).is_none();
            return values.contains(&absent);
        }
        let Some(value) = self.key.value(req) else {
            return self.if_exists || self.for_all || self.negated;
        };
        let matched = match &self.test {
            Test::StringEquals(vs) => {
                let t = value.text();
                vs.iter().any(|v| *v == t)
            }
            Test::StringEqualsIgnoreCase(vs) => {
                let t = value.text();
                vs.iter().any(|v| v.eq_ignore_ascii_case(&t))
            }
            Test::Like(vs) => {
                let t = value.text();
                vs.iter().any(|v| glob(v.as_bytes(), t.as_bytes(), false))
            }
            Test::Numeric(cmp, vs) => match value.text().trim().parse::<f64>() {
                Ok(x) => vs.iter().any(|v| x.partial_cmp(v).is_some_and(|o| cmp.holds(o))),
                Err(_) => false,
            },
            Test::Date(cmp, vs) => {
                let ms = match value {
                    Ctx::TimeMs(ms) => Some(ms as i64),
                    other => parse_date(&other.text()),
                };
                ms.is_some_and(|x| vs.iter().any(|v| cmp.holds(x.cmp(v))))
            }
            Test::Bool(vs) => {
                let b = match value {
                    Ctx::Bool(b) => Some(b),
                    other => parse_bool(&other.text()),
                };
                b.is_some_and(|b| vs.contains(&b))
            }
            Test::Ip(cidrs) => match value {
                Ctx::Ip(ip) => cidrs.iter().any(|c| c.contains(ip)),
                other => other.text().parse::<IpAddr>().is_ok_and(|ip| cidrs.iter().any(|c| c.contains(ip))),
            },
            Test::Null(_) => false,
        };
        matched != self.negated
    }

    /// One `"Operator": {"key": value-or-values}` entry (each key is its own condition: keys
    /// AND, values OR).
    fn parse(operator: &str, key: &str, values: &Value) -> Result<Condition, PolicyError> {
        let (for_all, op) = if let Some(rest) = strip_prefix_ci(operator, "ForAllValues:") {
            (true, rest)
        } else {
            (false, strip_prefix_ci(operator, "ForAnyValue:").unwrap_or(operator))
        };
        let (op, if_exists) = match op.len().checked_sub("IfExists".len()) {
            Some(at) if op.is_char_boundary(at) && op[at..].eq_ignore_ascii_case("IfExists") => (&op[..at], true),
            _ => (op, false),
        };
        let texts = scalar_list(values)
            .ok_or_else(|| bad(format!("condition {operator} {key}: values must be strings, numbers or booleans")))?;
        let strings = || texts.clone();
        let numbers = || -> Result<Vec<f64>, PolicyError> {
            texts
                .iter()
                .map(|t| t.trim().parse::<f64>().map_err(|_| bad(format!("{operator}: {t:?} is not a number"))))
                .collect()
        };
        let dates = || -> Result<Vec<i64>, PolicyError> {
            texts.iter().map(|t| parse_date(t).ok_or_else(|| bad(format!("{operator}: {t:?} is not a date")))).collect()
        };
        let bools = || -> Result<Vec<bool>, PolicyError> {
            texts
                .iter()
                .map(|t| parse_bool(t).ok_or_else(|| bad(format!("{operator}: {t:?} is not true or false"))))
                .collect()
        };
        let (test, negated) = match op.to_ascii_lowercase().as_str() {
            "stringequals" => (Test::StringEquals(strings()), false),
            "stringnotequals" => (Test::StringEquals(strings()), true),
            "stringequalsignorecase" => (Test::StringEqualsIgnoreCase(strings()), false),
            "stringnotequalsignorecase" => (Test::StringEqualsIgnoreCase(strings()), true),
            "stringlike" | "arnlike" | "arnequals" => (Test::Like(strings()), false),
            "stringnotlike" | "arnnotlike" | "arnnotequals" => (Test::Like(strings()), true),
            "numericequals" => (Test::Numeric(Cmp::Eq, numbers()?), false),
            "numericnotequals" => (Test::Numeric(Cmp::Eq, numbers()?), true),
            "numericlessthan" => (Test::Numeric(Cmp::Lt, numbers()?), false),
            "numericlessthanequals" => (Test::Numeric(Cmp::Le, numbers()?), false),
            "numericgreaterthan" => (Test::Numeric(Cmp::Gt, numbers()?), false),
            "numericgreaterthanequals" => (Test::Numeric(Cmp::Ge, numbers()?), false),
            "dateequals" => (Test::Date(Cmp::Eq, dates()?), false),
            "datenotequals" => (Test::Date(Cmp::Eq, dates()?), true),
            "datelessthan" => (Test::Date(Cmp::Lt, dates()?), false),
            "datelessthanequals" => (Test::Date(Cmp::Le, dates()?), false),
            "dategreaterthan" => (Test::Date(Cmp::Gt, dates()?), false),
            "dategreaterthanequals" => (Test::Date(Cmp::Ge, dates()?), false),
            "bool" => (Test::Bool(bools()?), false),
            "ipaddress" => (Test::Ip(cidrs(&texts, operator)?), false),
            "notipaddress" => (Test::Ip(cidrs(&texts, operator)?), true),
            "null" if !if_exists => (Test::Null(bools()?), false),
            _ => return Err(bad(format!("unknown condition operator {operator}"))),
        };
        Ok(Condition { key: Key::parse(key), test, negated, if_exists, for_all })
    }
}

fn cidrs(texts: &[String], operator: &str) -> Result<Vec<Cidr>, PolicyError> {
    texts
        .iter()
        .map(|t| Cidr::parse(t).ok_or_else(|| bad(format!("{operator}: {t:?} is not an IP address or CIDR"))))
        .collect()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A string, number or boolean, or a list of them, as strings.
fn scalar_list(v: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

/// `"x"` or `["x", "y"]` as a list of strings.
fn string_list(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| bad(format!("{what} must list strings"))))
            .collect(),
        _ => Err(bad(format!("{what} must be a string or a list of strings"))),
    }
}

impl Statement {
    fn parse(v: &Value) -> Result<Statement, PolicyError> {
        let s = v.as_object().ok_or_else(|| bad("each statement must be an object"))?;
        let effect = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            Some(other) => return Err(bad(format!("Effect must be Allow or Deny, not {other:?}"))),
            None => return Err(bad("a statement has no Effect")),
        };
        let (principal, not_principal) = match (s.get("Principal"), s.get("NotPrincipal")) {
            (Some(_), Some(_)) => return Err(bad("a statement has both Principal and NotPrincipal")),
            (Some(p), None) => (Some(Principals::parse(p)?), false),
            (None, Some(p)) => (Some(Principals::parse(p)?), true),
            (None, None) => (None, false),
        };
        let (actions, not_action) = match (s.get("Action"), s.get("NotAction")) {
            (Some(a), None) => (string_list(a, "Action")?, false),
            (None, Some(a)) => (string_list(a, "NotAction")?, true),
            _ => return Err(bad("a statement needs exactly one of Action and NotAction")),
        };
        let actions = actions.into_iter().map(|a| a.to_ascii_lowercase()).collect();
        let (resources, not_resource) = match (s.get("Resource"), s.get("NotResource")) {
            (Some(_), Some(_)) => return Err(bad("a statement has both Resource and NotResource")),
            (Some(r), None) => (Some(string_list(r, "Resource")?), false),
            (None, Some(r)) => (Some(string_list(r, "NotResource")?), true),
            (None, None) => (None, false),
        };
        let mut conditions = Vec::new();
        if let Some(c) = s.get("Condition") {
            let ops = c.as_object().ok_or_else(|| bad("Condition must be an object"))?;
            for (operator, keys) in ops {
                let keys =
                    keys.as_object().ok_or_else(|| bad(format!("condition {operator} must map keys to values")))?;
                for (key, values) in keys {
                    conditions.push(Condition::parse(operator, key, values)?);
                }
            }
        }
        Ok(Statement { effect, principal, not_principal, actions, not_action, resources, not_resource, conditions })
    }

    fn applies(&self, req: &Request<'_>) -> bool {
        if let Some(p) = &self.principal {
            if p.matches(&req.principal) == self.not_principal {
                return false;
            }
        }
        let action = self.actions.iter().any(|a| glob(a.as_bytes(), req.action.as_bytes(), true));
        if action == self.not_action {
            return false;
        }
        if let Some(resources) = &self.resources {
            let hit = resources.iter().any(|r| glob(r.as_bytes(), req.resource.as_bytes(), false));
            if hit == self.not_resource {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(req))
    }
}

impl Principals {
    fn parse(v: &Value) -> Result<Principals, PolicyError> {
        match v {
            Value::String(s) if s == "*" => Ok(Principals::Everyone),
            Value::String(s) => {
                Err(bad(format!("Principal {s:?} must be \"*\" or an object such as {{\"AWS\": ...}}")))
            }
            Value::Object(map) => {
                let mut aws = Vec::new();
                let mut services = Vec::new();
                for (kind, ids) in map {
                    let ids = string_list(ids, "Principal")?;
                    match kind.as_str() {
                        "AWS" if ids.iter().any(|i| i == "*") => return Ok(Principals::Everyone),
                        "AWS" => aws.extend(ids),
                        "Service" => services.extend(ids),
                        other => return Err(bad(format!("principals of type {other} are not supported"))),
                    }
                }
                Ok(Principals::Listed { aws, services })
            }
            _ => Err(bad("Principal must be \"*\" or an object")),
        }
    }

    fn matches(&self, who: &Principal<'_>) -> bool {
        match (self, who) {
            (Principals::Everyone, _) => true,
            (Principals::Listed { aws, .. }, Principal::Aws { account, arn }) => aws.iter().any(|p| {
                p == account
                    || p == arn
                    || (p.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root")) == Some(account))
            }),
            (Principals::Listed { services, .. }, Principal::Service(name)) => {
                services.iter().any(|s| s.eq_ignore_ascii_case(name))
            }
        }
    }
}

/// A date as IAM's Date operators take it: ISO 8601 (`2024-01-31`, `2024-01-31T12:00:00Z`,
/// fractions of a second, `+02:00` offsets) or epoch seconds. Milliseconds since the epoch.
fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok()?.checked_mul(1000);
    }
    let num = |t: &str| -> Option<i64> { t.bytes().all(|b| b.is_ascii_digit()).then(|| t.parse().ok())? };
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (num(parts.next()?)?, num(parts.next()?)?, num(parts.next()?)?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = crate::clock::days_from_civil(y, m, d) * 86_400_000;
    if let Some(t) = time {
        let (clock, offset_ms) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(at) = t.rfind(['+', '-']) {
            let (c, off) = t.split_at(at);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
            (c, sign * (num(oh)? * 3_600_000 + num(om)? * 60_000))
        } else {
            (t, 0)
        };
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut hms = hms.split(':');
        let h = num(hms.next()?)?;
        let mi = hms.next().map_or(Some(0), num)?;
        let sec = hms.next().map_or(Some(0), num)?;
        let frac_ms = if frac.is_empty() { 0 } else { num(&format!("{frac:0<3}")[..3])? };
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        ms += h * 3_600_000 + mi * 60_000 + sec * 1000 + frac_ms - offset_ms;
    }
    Some(ms)
}

/// `aws:CurrentTime` as text (for a String operator on a date key).
fn format_iso(ms: u64) -> String {
    crate::clock::iso8601(ms, false)
}

/// True once any queue or topic policy has been stored in this process. Lets the common request
/// (a key without identity policy, in the server's account, on a server where nobody ever set a
/// policy) skip the queue lookup: one atomic load. Conservative: never goes back to false.
static ANY_STORED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a resource policy may exist anywhere (see [`StoredPolicy`]).
pub fn any_stored_policy() -> bool {
    ANY_STORED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A resource's policy as stored (the text, returned as given) and parsed once, when it is set or
/// loaded, so requests evaluate it without parsing. Serialized as the text alone.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    text: String,
    parsed: std::sync::Arc<Policy>,
}

impl StoredPolicy {
    /// A new policy: refused when it does not parse (SetQueueAttributes answers
    /// `InvalidAttributeValue`).
    pub fn parse(text: &str) -> Result<StoredPolicy, PolicyError> {
        let parsed = Policy::parse(text)?;
        ANY_STORED.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(StoredPolicy { text: text.to_string(), parsed: std::sync::Arc::new(parsed) })
    }

    /// A policy read back from the store. One sluice accepted before it enforced policies may not
    /// parse: it is kept as text and enforces nothing (logged), so its owner can still replace it.
    pub fn load(text: String) -> StoredPolicy {
        ANY_STORED.store(true, std::sync::atomic::Ordering::Relaxed);
        let parsed = Policy::parse(&text).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a stored policy cannot be enforced and is ignored; set it again to fix it");
            Policy::empty()
        });
        StoredPolicy { text, parsed: std::sync::Arc::new(parsed) }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn policy(&self) -> &std::sync::Arc<Policy> {
        &self.parsed
    }
}

impl PartialEq for StoredPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for StoredPolicy {}

impl serde::Serialize for StoredPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for StoredPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StoredPolicy, D::Error> {
        String::deserialize(d).map(StoredPolicy::load)
    }
}
