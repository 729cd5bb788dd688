//! Messages as the engine sees them: what a sender supplies, what a receiver gets, and the validation
//! rules SQS applies to bodies and message attributes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// A message attribute value: `String`, `Number`, `Binary` or a custom type such as `Number.int`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    /// The data type, e.g. `String`, `Number.float`, `Binary.gif`.
    pub data_type: String,
    /// Set for String and Number types.
    pub string_value: Option<String>,
    /// Set for Binary types.
    pub binary_value: Option<Vec<u8>>,
}

impl AttributeValue {
    /// A String or Number attribute.
    pub fn string(data_type: &str, value: &str) -> Self {
        AttributeValue { data_type: data_type.into(), string_value: Some(value.into()), binary_value: None }
    }
    /// A Binary attribute.
    pub fn binary(data_type: &str, value: Vec<u8>) -> Self {
        AttributeValue { data_type: data_type.into(), string_value: None, binary_value: Some(value) }
    }
    /// Bytes this attribute counts toward the message size limit (name is counted by the caller).
    fn size(&self) -> usize {
        self.data_type.len()
            + self.string_value.as_ref().map_or(0, |s| s.len())
            + self.binary_value.as_ref().map_or(0, |b| b.len())
    }
}

/// Message attributes keyed by name; the BTreeMap keeps them sorted, which the MD5 digest requires.
pub type Attributes = BTreeMap<String, AttributeValue>;

/// One message to send (SendMessage, or one SendMessageBatch entry).
#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    /// The body, at least one character.
    pub body: String,
    /// Per-message delay; None takes the queue's DelaySeconds.
    pub delay_seconds: Option<i64>,
    /// User message attributes.
    pub attributes: Attributes,
    /// System attributes the sender may set (only AWSTraceHeader).
    pub system_attributes: Attributes,
    /// MessageGroupId: required on FIFO queues, optional on standard ones (fair queues).
    pub group_id: Option<String>,
    /// MessageDeduplicationId (FIFO queues only).
    pub deduplication_id: Option<String>,
}

impl SendMessage {
    /// Bytes the message counts toward a batch's 1 MiB: body plus attribute names, types and values
    /// (AWS's count, as LocalStack's recording of test_send_message_batch_with_oversized_contents shows).
    pub fn batch_size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + v.data_type.len()
                        + v.string_value.as_ref().map_or(0, |s| s.len())
                        + v.binary_value.as_ref().map_or(0, |b| b.len())
                })
                .sum::<usize>()
    }
}

/// The answer to one successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// The new message's id.
    pub message_id: String,
    /// MD5 of the body.
    pub md5_of_body: String,
    /// MD5 of the user attributes, if any.
    pub md5_of_attributes: Option<String>,
    /// MD5 of the system attributes, if any.
    pub md5_of_system_attributes: Option<String>,
    /// FIFO queues: the message's sequence number.
    pub sequence_number: Option<String>,
}

/// A message handed to a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message's id (the same on every receive).
    pub message_id: String,
    /// A handle for this receive only, for DeleteMessage / ChangeMessageVisibility.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// MD5 of the body.
    pub md5_of_body: String,
    /// Requested system attributes (SentTimestamp, ApproximateReceiveCount, ...), as strings.
    pub system_attributes: BTreeMap<String, String>,
    /// Requested user attributes.
    pub attributes: Attributes,
    /// MD5 of the returned user attributes, if any were returned.
    pub md5_of_attributes: Option<String>,
}

/// Checks that a body only holds the characters SQS allows:
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
pub fn validate_body_chars(body: &str) -> Result<()> {
    // Fast path over bytes (vectorised: no early exit): in UTF-8 the only disallowed characters
    // are ASCII controls other than tab/LF/CR, and U+FFFE/U+FFFF, which start with 0xEF.
    let plain =
        body.bytes().fold(true, |ok, b| ok & ((b >= 0x20 && b != 0xEF) | (b == b'\t') | (b == b'\n') | (b == b'\r')));
    if plain {
        return Ok(());
    }
    let bad = body.chars().find(|&c| !is_allowed_char(c));
    match bad {
        None => Ok(()),
        // AWS's wording, as real SQS answers are quoted in client issues (e.g. NServiceBus.AmazonSQS#2630: '#x1').
        Some(c) => Err(EngineError::InvalidMessageContents(format!(
            "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].",
            c as u32
        ))),
    }
}

fn is_allowed_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Most message attributes one message may carry.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// Validates user message attributes and returns the bytes they count toward the size limit.
pub fn validate_attributes(attrs: &Attributes) -> Result<usize> {
    if attrs.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(EngineError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{}].",
            attrs.len(),
            MAX_MESSAGE_ATTRIBUTES
        )));
    }
    let mut size = 0;
    for (name, value) in attrs {
        validate_attribute_name(name)?;
        validate_attribute_value(name, value)?;
        size += name.len() + value.size();
    }
    Ok(size)
}

/// Attribute name rules of the SQS model's documentation. No recording of AWS's texts was found; these
/// are LocalStack's (its provider's `check_attributes`), the closest to AWS's in public code. Letters
/// outside ASCII are allowed: LocalStack's AWS-validated test_send_message_with_invalid_string_attributes
/// sends `attr.1øßä` successfully.
fn validate_attribute_name(name: &str) -> Result<()> {
    let invalid = |why: &str| Err(EngineError::InvalidParameterValue(why.to_string()));
    if name.is_empty() {
        return invalid("The request must contain non-empty message (user) attribute names.");
    }
    if name.len() > 256 {
        return invalid("Message (user) attribute names must be shorter than 256 Bytes");
    }
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return invalid(
            "Message (user) attributes name can only contain upper and lower score characters, digits, periods, hyphens and underscores. ",
        );
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aws.") || lower.starts_with("amazon.") || name.starts_with('.') || name.ends_with('.') {
        return invalid(
            "You can't use message attribute names beginning with 'AWS.' or 'Amazon.'. These strings are reserved for internal use. Additionally, they cannot start or end with '.'.",
        );
    }
    if name.contains("..") {
        return invalid("Message (user) attribute name must not have successive '.' characters.");
    }
    Ok(())
}

fn validate_attribute_value(name: &str, v: &AttributeValue) -> Result<()> {
    if v.data_type.is_empty() {
        return Err(EngineError::InvalidParameterValue(format!(
            "The message attribute '{name}' must contain non-empty message attribute type."
        )));
    }
    if v.data_type.len() > 256 {
        return Err(EngineError::InvalidParameterValue(format!(
            "Message attribute '{name}' has a data type longer than 256 characters."
        )));
    }
    let (base, custom) = match v.data_type.split_once('.') {
        Some((base, custom)) => (base, Some(custom)),
        None => (v.data_type.as_str(), None),
    };
    if custom.is_some_and(str::is_empty) {
        // `String.`: a custom type label must follow the dot (no AWS recording of the text was found).
        return Err(EngineError::InvalidParameterValue(format!(
            "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
        )));
    }
    match base {
        "String" | "Number" => {
            let Some(s) = &v.string_value else {
                return Err(EngineError::InvalidParameterValue(format!(
                    "The message attribute '{name}' with type '{base}' must use field 'String'."
                )));
            };
            if v.binary_value.is_some() {
                return Err(EngineError::InvalidParameterValue(format!(
                    "The message attribute '{name}' with type '{base}' must use field 'String'."
                )));
            }
            if s.is_empty() {
                return Err(EngineError::InvalidParameterValue(format!(
                    "Message (user) attribute '{name}' must contain a non-empty value of type '{base}'."
                )));
            }
            if base == "Number" && !is_sqs_number(s) {
                return Err(EngineError::InvalidParameterValue(format!(
                    "Can't cast the value of message (user) attribute '{name}' to a number."
                )));
            }
            validate_body_chars(s).map_err(|_| {
                EngineError::InvalidParameterValue(format!(
                    "Message attribute '{name}' contains invalid characters."
                ))
            })
        }
        "Binary" => match (&v.binary_value, &v.string_value) {
            (Some(b), None) if !b.is_empty() => Ok(()),
            (Some(_), None) => Err(EngineError::InvalidParameterValue(format!(
                "The message attribute '{name}' must contain non-empty message attribute value for message attribute type 'Binary'."
            ))),
            _ => Err(EngineError::InvalidParameterValue(format!(
                "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
            ))),
        },
        _ => Err(EngineError::InvalidParameterValue(format!(
            "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
        ))),
    }
}

/// SQS numbers: up to 38 significant digits, magnitude 10^-128 .. 10^+126. We accept decimal
/// notation with an optional sign, fraction and exponent.
fn is_sqs_number(s: &str) -> bool {
    let t = s.trim();
    if t.is_empty() || t.len() > 128 {
        return false;
    }
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    let digits_ok = int.chars().all(|c| c.is_ascii_digit()) && frac.chars().all(|c| c.is_ascii_digit());
    if !digits_ok || (int.is_empty() && frac.is_empty()) {
        return false;
    }
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    if significant > 38 {
        return false;
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || unsigned.len() > 4 || !unsigned.chars().all(|c| c.is_ascii_digit()) {
                return false;
            }
            match e.parse() {
                Ok(e) => e,
                Err(_) => return false,
            }
        }
    };
    // Zero has no magnitude to check.
    let Some(first) = digits.find(|c| c != '0') else { return true };
    // The value is d.ddd x 10^magnitude, d the first non-zero digit.
    let magnitude = int.len() as i64 - 1 - first as i64 + exponent;
    (-128..=126).contains(&magnitude)
}

/// Checks a MessageGroupId or MessageDeduplicationId: 1–128 characters, alphanumeric or punctuation.
pub fn validate_fifo_id(name: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation());
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidParameterValue(format!(
            "Value {value} for parameter {name} is invalid. Reason: {name} can only include alphanumeric and punctuation characters. 1 to 128 in length."
        )))
    }
}

/// Validates the system attributes a sender may set (only `AWSTraceHeader`, a String).
pub fn validate_system_attributes(attrs: &Attributes) -> Result<usize> {
    let mut size = 0;
    for (name, value) in attrs {
        if name != "AWSTraceHeader" {
            return Err(EngineError::InvalidParameterValue(format!(
                "Message system attribute name '{name}' is invalid."
            )));
        }
        if value.data_type != "String" || value.string_value.as_deref().is_none_or(str::is_empty) {
            return Err(EngineError::InvalidParameterValue(
                "Message system attribute 'AWSTraceHeader' must be of type String with a non-empty value.".into(),
            ));
        }
        size += name.len() + value.size();
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_characters_follow_the_xml_rule() {
        assert!(validate_body_chars("hello\t\n\r ünïcødé 😀").is_ok());
        assert!(validate_body_chars("\u{0}").is_err());
        assert!(validate_body_chars("a\u{1F}b").is_err());
        assert!(validate_body_chars("\u{FFFE}").is_err());
        assert!(validate_body_chars("\u{FFFD}").is_ok());
        assert!(validate_body_chars("x\u{FFFF}").is_err());
        assert!(validate_body_chars("\u{E000}\u{EFFF}\u{F000}").is_ok(), "0xEF lead bytes that are allowed");
        assert!(validate_body_chars("\u{7F}").is_ok());
    }

    #[test]
    fn numbers_are_validated() {
        for ok in [
            "1",
            "-1.5",
            "0.000",
            "1e10",
            "+3",
            ".5",
            "12345678901234567890123456789012345678",
            "1e126",
            "-9.99e125",
            "1e-128",
            "0.001e-125",
            "0e999",
            "10000000000000000000000000000000000000000",
        ] {
            assert!(is_sqs_number(ok), "{ok}");
        }
        for bad in [
            "",
            "abc",
            "1.2.3",
            "1e",
            "--1",
            "123456789012345678901234567890123456789",
            "1e400",
            "-1e400",
            "1e127",
            "1e-129",
            "0.01e-127",
            "1e99999",
        ] {
            assert!(!is_sqs_number(bad), "{bad}");
        }
    }

    #[test]
    fn attribute_rules() {
        let mut a = Attributes::new();
        a.insert("ok_name-1.x".into(), AttributeValue::string("String", "v"));
        assert!(validate_attributes(&a).is_ok());
        for bad in ["AWS.x", "amazon.y", ".a", "a.", "a..b", "sp ace"] {
            let mut a = Attributes::new();
            a.insert(bad.into(), AttributeValue::string("String", "v"));
            assert!(validate_attributes(&a).is_err(), "{bad}");
        }
        let mut a = Attributes::new();
        a.insert("n".into(), AttributeValue::string("Number", "x"));
        assert!(validate_attributes(&a).is_err());
        let mut a = Attributes::new();
        a.insert("t".into(), AttributeValue::string("Weird", "x"));
        assert!(validate_attributes(&a).is_err());
        let mut a = Attributes::new();
        for i in 0..11 {
            a.insert(format!("a{i}"), AttributeValue::string("String", "v"));
        }
        assert!(validate_attributes(&a).is_err());
    }
}
