//! Request validation with AWS's limits and InvalidParameter wording: topic names and attributes,
//! subscription attributes (filter policies included), message attributes, FIFO ids, tags, ARNs
//! and page tokens.

use std::collections::BTreeMap;

use crate::action::MsgAttr;
use crate::delivery;
use crate::error::{SnsError, SnsResult};
use crate::filter::{self, FilterPolicy, Scope};

pub(crate) const TOPIC_SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "DisplayName",
    "Policy",
    "TracingConfig",
    "KmsMasterKeyId",
    "SignatureVersion",
    "ContentBasedDeduplication",
    "FifoThroughputScope",
    "ArchivePolicy",
    "DataProtectionPolicy",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
];

pub(crate) const SUB_SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

pub(crate) fn valid_topic_name(name: &str, fifo: bool) -> bool {
    let base = if fifo { name.strip_suffix(".fifo").unwrap_or("") } else { name };
    !base.is_empty() && name.len() <= 256 && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn validate_bool(name: &str, v: &str) -> SnsResult<()> {
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        Ok(())
    } else {
        Err(SnsError::invalid(format!(
            "Invalid parameter: Attributes Reason: {name}: Invalid value [{v}]. Must be true or false."
        )))
    }
}

pub(crate) fn validate_json_attr(name: &str, v: &str) -> SnsResult<()> {
    if v.is_empty() {
        return Ok(());
    }
    serde_json::from_str::<serde_json::Value>(v)
        .map(|_| ())
        .map_err(|_| SnsError::invalid(format!("Invalid parameter: Attributes Reason: {name}: failed to parse JSON.")))
}

pub(crate) fn check_arn(arn: &str, what: &str) -> SnsResult<()> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[2] != "sns" {
        return Err(SnsError::invalid(format!("Invalid parameter: {what}")));
    }
    Ok(())
}

pub(crate) fn validate_topic_attrs(attrs: &BTreeMap<String, String>, fifo: bool) -> SnsResult<()> {
    for (k, v) in attrs {
        if k == "FifoTopic" {
            return Err(SnsError::invalid(
                "Invalid parameter: Attributes Reason: FifoTopic can only be set when the topic is created",
            ));
        }
        if !TOPIC_SETTABLE.contains(&k.as_str()) {
            return Err(SnsError::invalid(format!("Invalid parameter: Attributes Reason: Unknown attribute {k}")));
        }
        match k.as_str() {
            "ContentBasedDeduplication" => {
                validate_bool(k, v)?;
                if !fifo {
                    return Err(SnsError::invalid(
                            "Invalid parameter: Attributes Reason: Content-based deduplication can only be set for FIFO topics",
                        ));
                }
            }
            "Policy" if !v.is_empty() => {
                // Enforced, so it must parse as a policy, not only as JSON (JSON first: its error
                // text is the recorded one).
                validate_json_attr(k, v)?;
                sluice_engine::iam::Policy::parse(v)
                    .map_err(|e| SnsError::invalid(format!("Invalid parameter: Policy Error: {e}")))?;
            }
            "DeliveryPolicy" | "Policy" | "DataProtectionPolicy" | "ArchivePolicy" => validate_json_attr(k, v)?,
            "DisplayName" if v.len() > 100 => {
                return Err(SnsError::invalid("Invalid parameter: DisplayName: must be at most 100 characters"))
            }
            "SignatureVersion" if v != "1" && v != "2" => {
                return Err(SnsError::invalid("Invalid parameter: Attributes Reason: SignatureVersion: must be 1 or 2"))
            }
            "TracingConfig" if v != "Active" && v != "PassThrough" => {
                return Err(SnsError::invalid(
                    "Invalid parameter: Attributes Reason: TracingConfig: must be Active or PassThrough",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks subscription attributes; `subscribe` picks AWS's wording of filter-policy errors
/// (Subscribe: `Invalid parameter: Attributes Reason: ...`).
pub(crate) fn validate_sub_attrs(
    attrs: &BTreeMap<String, String>,
    protocol: &str,
    current: &BTreeMap<String, String>,
    subscribe: bool,
) -> SnsResult<()> {
    let filter_error = |reason: String| SnsError::invalid(filter::invalid_parameter(&reason, subscribe));
    for (k, v) in attrs {
        if !SUB_SETTABLE.contains(&k.as_str()) {
            return Err(SnsError::invalid(format!("Invalid parameter: Attributes Reason: Unknown attribute {k}")));
        }
        match k.as_str() {
            "RawMessageDelivery" => validate_bool(k, v)?,
            "DeliveryPolicy" => {
                validate_json_attr(k, v)?;
                if !protocol.starts_with("http") && !v.is_empty() {
                    return Err(SnsError::invalid(
                        "Invalid parameter: DeliveryPolicy: Delivery policy can only be set for HTTP/S subscriptions",
                    ));
                }
            }
            "RedrivePolicy" => {
                if v.is_empty() {
                    continue;
                }
                let rp: serde_json::Value = serde_json::from_str(v)
                    .map_err(|_| SnsError::invalid("Invalid parameter: RedrivePolicy: failed to parse JSON."))?;
                let dlq = rp.get("deadLetterTargetArn").and_then(|d| d.as_str()).ok_or_else(|| {
                    SnsError::invalid("Invalid parameter: RedrivePolicy: deadLetterTargetArn is missing")
                })?;
                if delivery::queue_name_of_arn(dlq).is_none() {
                    return Err(SnsError::invalid(
                        "Invalid parameter: RedrivePolicy: deadLetterTargetArn is an invalid arn",
                    ));
                }
            }
            "FilterPolicyScope" => {
                Scope::parse(v).map_err(filter_error)?;
            }
            _ => {}
        }
    }
    // Check the filter policy against the scope it will have.
    let policy = attrs.get("FilterPolicy").or(current.get("FilterPolicy"));
    let scope = attrs.get("FilterPolicyScope").or(current.get("FilterPolicyScope"));
    if let Some(text) = policy.filter(|t| !t.is_empty()) {
        let scope =
            scope.map(|s| Scope::parse(s)).transpose().map_err(filter_error)?.unwrap_or(Scope::MessageAttributes);
        FilterPolicy::parse(text, scope).map_err(filter_error)?;
    }
    Ok(())
}

pub(crate) fn check_fifo_id(name: &str, v: &str) -> SnsResult<()> {
    if v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SnsError::invalid(format!(
            "Invalid parameter: {name} Reason: must be 1-128 printable ASCII characters"
        )));
    }
    Ok(())
}

pub(crate) fn validate_message_attributes(attrs: &BTreeMap<String, MsgAttr>) -> SnsResult<()> {
    if attrs.len() > 10 {
        // AWS allows more on SNS itself, but SQS subscribers accept at most 10; keep the SNS limit loose.
        if attrs.len() > 50 {
            return Err(SnsError::invalid_value("Number of message attributes exceeds the limit"));
        }
    }
    for (name, a) in attrs {
        if name.is_empty()
            || name.len() > 256
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
            || name.to_ascii_lowercase().starts_with("aws.")
            || name.to_ascii_lowercase().starts_with("amazon.")
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(SnsError::invalid_value(format!("The message attribute name '{name}' is invalid.")));
        }
        let base = a.data_type.split('.').next().unwrap_or("");
        match base {
            "String" | "Number" if a.string_value.is_none() => {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{}'.",
                    a.data_type
                )))
            }
            "Binary" if a.binary_value.is_none() => {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type 'Binary'."
                )))
            }
            "String" | "Number" | "Binary" => {}
            _ => {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
                )))
            }
        }
        if base == "Number" {
            let v = a.string_value.as_deref().unwrap_or("");
            if v.trim().parse::<f64>().map(|f| !f.is_finite()).unwrap_or(true) {
                return Err(SnsError::invalid_value(format!(
                    "An error occurred while parsing the message attribute '{name}' value '{v}' as Number."
                )));
            }
        }
        if a.data_type == "String.Array" {
            let v = a.string_value.as_deref().unwrap_or("");
            if !matches!(serde_json::from_str::<serde_json::Value>(v), Ok(serde_json::Value::Array(_))) {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' with type 'String.Array' has invalid value '{v}'."
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn validate_tags(tags: &BTreeMap<String, String>) -> SnsResult<()> {
    if tags.len() > 50 {
        return Err(SnsError::TagLimitExceeded);
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(SnsError::invalid(format!("Invalid parameter: Tags Reason: invalid tag {k}")));
        }
    }
    Ok(())
}

/// The offset a List* NextToken names (tokens are offsets as we hand them out).
pub(crate) fn page_start(next_token: Option<&str>) -> SnsResult<usize> {
    match next_token {
        None | Some("") => Ok(0),
        Some(t) => t.parse().map_err(|_| SnsError::invalid("Invalid parameter: NextToken")),
    }
}
