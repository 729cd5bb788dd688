//! The SNS Query protocol: form parameters in, XML out, AWS's error document.

use std::collections::{BTreeMap, HashMap};

use sluice_protocol::Response;

use crate::VERSION;

pub const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// An SNS error: code, HTTP status, message.
#[derive(Debug, Clone)]
pub struct SnsError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl SnsError {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        SnsError {
            code,
            status,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameter", 400, message)
    }
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new("ParameterValueInvalid", 400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("NotFound", 404, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalError", 500, message)
    }
    pub fn missing(name: &str) -> Self {
        Self::invalid(format!("Invalid parameter: {name}"))
    }
}

pub type SnsResult<T> = Result<T, SnsError>;

/// Form parameters of one request (query string and form body together).
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn parse(query: Option<&str>, body: &[u8]) -> Params {
        let mut map = HashMap::new();
        if let Some(q) = query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.insert(k.into_owned(), v.into_owned());
            }
        }
        for (k, v) in form_urlencoded::parse(body) {
            map.insert(k.into_owned(), v.into_owned());
        }
        Params(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> SnsResult<&str> {
        self.get(name).ok_or_else(|| SnsError::missing(name))
    }

    pub fn bool(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `Prefix.entry.N.key` / `Prefix.entry.N.value` (N from 1).
    pub fn map(&self, prefix: &str, key: &str, value: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for i in 1.. {
            let Some(k) = self.get(&format!("{prefix}.entry.{i}.{key}")) else {
                break;
            };
            let v = self
                .get(&format!("{prefix}.entry.{i}.{value}"))
                .unwrap_or("");
            out.insert(k.to_string(), v.to_string());
        }
        out
    }

    /// `Prefix.member.N` (N from 1).
    pub fn members(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        for i in 1.. {
            let Some(v) = self.get(&format!("{prefix}.member.{i}")) else {
                break;
            };
            out.push(v.to_string());
        }
        out
    }

    /// `Tags.member.N.Key` / `.Value`.
    pub fn tags(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for i in 1.. {
            let Some(k) = self.get(&format!("{prefix}.member.{i}.Key")) else {
                break;
            };
            let v = self
                .get(&format!("{prefix}.member.{i}.Value"))
                .unwrap_or("");
            out.push((k.to_string(), v.to_string()));
        }
        out
    }
}

/// A message attribute as published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MsgAttr {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

/// `Prefix.entry.N.Name` / `.Value.DataType` / `.Value.StringValue` / `.Value.BinaryValue` (base64).
pub fn message_attributes(params: &Params, prefix: &str) -> SnsResult<BTreeMap<String, MsgAttr>> {
    use base64::Engine as _;
    let mut out = BTreeMap::new();
    for i in 1.. {
        let Some(name) = params.get(&format!("{prefix}.entry.{i}.Name")) else {
            break;
        };
        let p = format!("{prefix}.entry.{i}.Value");
        let data_type = params
            .get(&format!("{p}.DataType"))
            .unwrap_or("")
            .to_string();
        let string_value = params.get(&format!("{p}.StringValue")).map(str::to_string);
        let binary_value = match params.get(&format!("{p}.BinaryValue")) {
            Some(b) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| {
                        SnsError::invalid_value(format!(
                            "The message attribute '{name}' has an invalid binary value."
                        ))
                    })?,
            ),
            None => None,
        };
        out.insert(
            name.to_string(),
            MsgAttr {
                data_type,
                string_value,
                binary_value,
            },
        );
    }
    Ok(out)
}

/// True for an SNS Query request: `Version=2010-03-31` in the query string or form body; also the
/// SubscribeURL / UnsubscribeURL links SNS hands out (`Action=ConfirmSubscription|Unsubscribe`,
/// which are not SQS actions) when no Version is given.
pub fn is_sns_request(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> bool {
    let mut version = None;
    let mut action = None;
    let mut scan = |bytes: &[u8]| {
        for (k, v) in form_urlencoded::parse(bytes) {
            match k.as_ref() {
                "Version" => version = Some(v.into_owned()),
                "Action" => action = Some(v.into_owned()),
                _ => {}
            }
        }
    };
    if let Some(q) = query {
        scan(q.as_bytes());
    }
    let form_body = content_type.is_none_or(|ct| ct.contains("x-www-form-urlencoded"));
    if form_body && !body.is_empty() && !body.starts_with(b"{") {
        scan(body);
    }
    match version.as_deref() {
        Some(v) => v == VERSION,
        None => matches!(
            action.as_deref(),
            Some("ConfirmSubscription" | "Unsubscribe")
        ),
    }
}

/// Escapes text for XML (the same escaping as the SQS Query responses).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    sluice_protocol::render::esc(&mut out, s);
    out
}

/// `<Name>value</Name>`, escaped.
pub fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

/// `<Name><entry><key>..</key><value>..</value></entry>...</Name>`
pub fn map_xml(name: &str, map: &BTreeMap<String, String>) -> String {
    let mut s = format!("<{name}>");
    for (k, v) in map {
        s.push_str("<entry>");
        s.push_str(&el("key", k));
        s.push_str(&el("value", v));
        s.push_str("</entry>");
    }
    s.push_str(&format!("</{name}>"));
    s
}

fn xml(status: u16, body: String, request_id: &str) -> Response {
    Response {
        status,
        content_type: "text/xml",
        headers: vec![("x-amzn-requestid", request_id.to_string())],
        body: body.into_bytes(),
    }
}

pub fn ok_response(action: &str, result: &str, request_id: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    xml(200, body, request_id)
}

/// Actions whose response has no Result element.
pub fn empty_response(action: &str, request_id: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<{action}Response xmlns=\"{XMLNS}\"><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    xml(200, body, request_id)
}

pub fn error_response(e: &SnsError, request_id: &str) -> Response {
    let side = if e.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{side}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        e.code,
        escape(&e.message)
    );
    xml(e.status, body, request_id)
}

/// Milliseconds since the epoch as ISO 8601 with milliseconds, UTC (`2024-05-01T12:00:00.123Z`).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_709_294_400_123), "2024-03-01T12:00:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn routing() {
        assert!(is_sns_request(
            None,
            Some("application/x-www-form-urlencoded"),
            b"Action=CreateTopic&Version=2010-03-31&Name=a"
        ));
        assert!(!is_sns_request(
            None,
            Some("application/x-www-form-urlencoded"),
            b"Action=AddPermission&Version=2012-11-05"
        ));
        assert!(is_sns_request(
            Some("Action=AddPermission&Version=2010-03-31"),
            None,
            b""
        ));
        assert!(is_sns_request(
            Some("Action=ConfirmSubscription&TopicArn=x&Token=y"),
            None,
            b""
        ));
        assert!(!is_sns_request(
            None,
            Some("application/x-amz-json-1.0"),
            b"{\"QueueName\":\"a\"}"
        ));
        assert!(!is_sns_request(Some("Action=ListQueues"), None, b""));
    }

    #[test]
    fn params() {
        let p = Params::parse(
            Some("Action=CreateTopic"),
            b"Name=t&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x+y&Tags.member.1.Key=k&Tags.member.1.Value=v&TagKeys.member.1=a&TagKeys.member.2=b",
        );
        assert_eq!(p.get("Action"), Some("CreateTopic"));
        assert_eq!(
            p.map("Attributes", "key", "value")
                .get("DisplayName")
                .map(String::as_str),
            Some("x y")
        );
        assert_eq!(p.tags("Tags"), vec![("k".to_string(), "v".to_string())]);
        assert_eq!(p.members("TagKeys"), vec!["a", "b"]);
    }
}
