//! Copies for SQS subscribers: queue ARNs to names, SNS attributes to SQS attributes, one durable send.

use std::collections::BTreeMap;

use sluice_engine::message::{AttributeValue, SendMessage};
use sluice_engine::{Engine, EngineError};

use crate::action::MsgAttr;

/// SNS attributes as SQS message attributes (raw delivery).
pub fn sqs_attributes(attrs: &BTreeMap<String, MsgAttr>) -> sluice_engine::message::Attributes {
    attrs
        .iter()
        .map(|(k, a)| {
            let v = match &a.binary_value {
                Some(b) => AttributeValue::binary(&a.data_type, b.clone()),
                None => AttributeValue::string(&a.data_type, a.string_value.as_deref().unwrap_or("")),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The SQS queue name of a queue ARN (`arn:aws:sqs:region:account:name`).
pub fn queue_name_of_arn(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sqs" && !parts[5].is_empty() {
        Some(parts[5])
    } else {
        None
    }
}

/// Sends one copy to an SQS queue; durable when this returns Ok.
pub async fn send_to_queue(
    engine: &Engine,
    queue_arn: &str,
    msg: SendMessage,
    sender: &str,
) -> Result<(), EngineError> {
    let name = queue_name_of_arn(queue_arn).ok_or(EngineError::QueueDoesNotExist)?;
    let results = engine.send_messages(name, vec![msg], sender).await?;
    match results.into_iter().next() {
        Some(r) => r.map(|_| ()),
        None => Err(EngineError::Internal("no send result".into())),
    }
}
