//! The queue `Policy` document that AddPermission and RemovePermission edit, shaped as AWS writes it:
//! `{"Version":"2008-10-17","Id":"<arn>/SQSDefaultPolicy","Statement":[{"Sid":<label>,"Effect":"Allow",
//! "Principal":{"AWS":...},"Action":...,"Resource":<arn>}]}`.

use serde_json::{json, Value};

use crate::error::{EngineError, Result};

/// Actions AddPermission accepts (AWS's list; `*` means all).
const ACTIONS: &[&str] = &[
    "*",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ListQueueTags",
];

/// Most statements AddPermission puts in one policy.
const MAX_STATEMENTS: usize = 20;

fn invalid(name: &str, value: &str, why: &str) -> EngineError {
    EngineError::InvalidParameterValue(format!("Value {value} for parameter {name} is invalid. Reason: {why}"))
}

fn one_or_many(items: Vec<String>) -> Value {
    if items.len() == 1 {
        json!(items[0])
    } else {
        json!(items)
    }
}

/// Adds a statement `label` to `policy` (None: no policy yet). Returns the new document.
pub fn add_permission(
    policy: Option<&str>,
    arn: &str,
    label: &str,
    accounts: &[String],
    actions: &[String],
) -> Result<String> {
    if label.is_empty() || label.len() > 80 || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            "Label",
            label,
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length.",
        ));
    }
    // The texts below are those of moto's AddPermission tests (no recording of AWS's answers was found;
    // tests/python/test_aws_fidelity.py says what was searched). The action is named with its `SQS:` prefix.
    if accounts.is_empty() {
        return Err(invalid("PrincipalId", "[]", "Unable to verify."));
    }
    if actions.is_empty() {
        return Err(EngineError::MissingParameter("Actions".into()));
    }
    if actions.len() > 7 {
        return Err(EngineError::OverLimit(format!("{} Actions were found, maximum allowed is 7.", actions.len())));
    }
    for a in actions {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(invalid(
                "ActionName",
                &format!("SQS:{a}"),
                "Only the queue owner is allowed to invoke this action.",
            ));
        }
    }
    let mut doc = match policy {
        Some(p) => {
            serde_json::from_str::<Value>(p).map_err(|_| EngineError::Internal("stored policy is not JSON".into()))?
        }
        None => json!({ "Version": "2008-10-17", "Id": format!("{arn}/SQSDefaultPolicy"), "Statement": [] }),
    };
    let statements = statements_mut(&mut doc)?;
    if statements.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(label)) {
        return Err(invalid("Label", label, "Already exists."));
    }
    if statements.len() >= MAX_STATEMENTS {
        return Err(EngineError::OverLimit(format!("A queue policy can have at most {MAX_STATEMENTS} statements.")));
    }
    statements.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": { "AWS": one_or_many(accounts.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect()) },
        "Action": one_or_many(actions.iter().map(|a| format!("SQS:{a}")).collect()),
        "Resource": arn,
    }));
    Ok(doc.to_string())
}

/// Removes statement `label`; returns the new document, or None when no statement is left.
pub fn remove_permission(policy: Option<&str>, label: &str) -> Result<Option<String>> {
    // AWS's recorded answer (LocalStack snapshot test_sqs_permission_lifecycle).
    let missing = || invalid("Label", label, "can't find label.");
    let mut doc: Value = serde_json::from_str(policy.ok_or_else(missing)?).map_err(|_| missing())?;
    let statements = statements_mut(&mut doc)?;
    let before = statements.len();
    statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label));
    if statements.len() == before {
        return Err(missing());
    }
    Ok((!statements.is_empty()).then(|| doc.to_string()))
}

fn statements_mut(doc: &mut Value) -> Result<&mut Vec<Value>> {
    let obj = doc.as_object_mut().ok_or_else(|| EngineError::Internal("policy is not an object".into()))?;
    let entry = obj.entry("Statement").or_insert_with(|| json!([]));
    if entry.is_object() {
        *entry = json!([entry.clone()]);
    }
    entry.as_array_mut().ok_or_else(|| EngineError::Internal("policy Statement is not a list".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_remove_statements() {
        let arn = "arn:aws:sqs:us-east-1:000000000000:q";
        let p = add_permission(None, arn, "l1", &["111122223333".into()], &["SendMessage".into()]).unwrap();
        let doc: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(doc["Id"], format!("{arn}/SQSDefaultPolicy"));
        assert_eq!(doc["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
        assert_eq!(doc["Statement"][0]["Action"], "SQS:SendMessage");
        assert!(add_permission(Some(&p), arn, "l1", &["1".into()], &["*".into()]).is_err());
        let p2 =
            add_permission(Some(&p), arn, "l2", &["1".into(), "2".into()], &["*".into(), "PurgeQueue".into()]).unwrap();
        let p3 = remove_permission(Some(&p2), "l1").unwrap().unwrap();
        assert!(!p3.contains("\"l1\""));
        assert_eq!(remove_permission(Some(&p3), "l2").unwrap(), None);
        assert!(remove_permission(Some(&p3), "nope").is_err());
        assert!(remove_permission(None, "nope").is_err());
    }
}
