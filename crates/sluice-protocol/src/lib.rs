//! The AWS wire layer for sluice: the only crate that knows HTTP-level formats - AWS JSON 1.0, the
//! Query protocol's forms and XML, AWS's error documents. It knows nothing of sockets: the server hands
//! it a [`Request`], [`route`]s it once, and writes back the [`Response`].
//!
//! Layout:
//! - this file: the request and response types and the routing step (`Admin | Sqs | Sns`);
//! - `query`: the Query protocol's request side for both APIs: [`Form`], parsed once per request
//!   (percent-decoding, duplicate and index rules), and its unflattening into SQS's JSON shapes;
//! - [`xml`]: the XML writing both APIs share;
//! - [`sqs`]: the SQS API - its operations table, dispatch to the engine, replies and errors;
//! - [`sns`]: the SNS API's wire - its operations table, form decoding, XML replies and errors (the
//!   handlers are in the `sluice-sns` crate, on typed inputs and outputs).
//!
//! - [`auth`]: SigV4 verification: who sent a request ([`auth::verify`] → [`auth::Identity`]).
//!
//! Whether a request must be signed is the server's decision (its `--auth` mode); this crate
//! verifies and answers AWS's errors.

pub mod auth;
pub(crate) mod query;
pub mod sns;
pub mod sqs;
pub mod xml;

pub use query::{Form, Malformed, Node};
pub use sqs::error::ApiError;
pub use sqs::handle;

/// Largest request body accepted: a 1 MiB batch can grow several-fold when JSON-escaped.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// An HTTP request as the protocol layer sees it: method, path, query, every header and the raw body
/// (what a signature check needs), plus the headers the protocols read on every request.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Every header, as received.
    pub headers: &'a http::HeaderMap,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `X-Amz-Target`.
    pub target: Option<&'a str>,
    /// `Host`, for queue URLs when no public base URL is configured.
    pub host: Option<&'a str>,
    /// `"http"` or `"https"`: how the request reached the listener, the scheme of queue URLs
    /// built from `Host`.
    pub scheme: &'a str,
    pub body: &'a [u8],
    /// Who signed the request, once verified (None: the server runs without authentication).
    /// For policy enforcement; handlers see it through their context.
    pub identity: Option<&'a auth::Identity>,
    /// The peer's address (`aws:SourceIp` in policies); None when not known (tests).
    pub source_ip: Option<std::net::IpAddr>,
}

/// Which API a request is for. The server routes every request once, with [`route`]; a
/// Query-protocol request's form is parsed there, once, and travels with the route.
#[derive(Debug)]
pub enum Route<'a> {
    /// sluice's own endpoints (`/health`, `/metrics`, the dashboard): a GET without an `Action`.
    Admin,
    /// The SQS API, in the protocol the request speaks.
    Sqs(SqsRequest<'a>),
    /// The SNS API (Query protocol, `Version=2010-03-31`), with its form.
    Sns(Form<'a>),
}

/// An SQS request as routed: AWS JSON 1.0 (the body is read by the operation's DTO), or the Query
/// protocol with its parsed form.
#[derive(Debug)]
pub enum SqsRequest<'a> {
    Json,
    Query(Form<'a>),
}

impl<'a> SqsRequest<'a> {
    /// A request [`route`] gave to [`Route::Admin`] that sluice's own endpoints do not serve: SQS's
    /// Query protocol answers it (with AWS's error).
    pub fn unserved(req: &Request<'a>) -> SqsRequest<'a> {
        SqsRequest::Query(Form::parse(req.query, req.body))
    }

    /// The protocol the answer uses.
    pub fn protocol(&self) -> Protocol {
        match self {
            SqsRequest::Json => Protocol::Json,
            SqsRequest::Query(_) => Protocol::Query,
        }
    }
}

/// The SNS API version; SQS's is 2012-11-05. Both APIs have actions of the same name (AddPermission), so
/// the version decides.
pub const SNS_VERSION: &str = "2010-03-31";

/// Routes a request: JSON 1.0 (an `X-Amz-Target`) is SQS; a GET without an `Action`, and the
/// dashboard's `POST /ui/login` and `/ui/logout`, are sluice's own;
/// otherwise the form is parsed (query string and body, [`Form`]) and a `Version=2010-03-31` makes
/// it SNS, as do the two actions of the SubscribeURL / UnsubscribeURL links SNS hands out
/// (`ConfirmSubscription`, `Unsubscribe`: not SQS actions) when no Version is given; the rest is
/// SQS's Query protocol. Only a form body counts for routing (a JSON body's bytes are not
/// parameters), though SNS reads the parameters of any body.
pub fn route<'a>(req: &Request<'a>) -> Route<'a> {
    if req.target.is_some() {
        return Route::Sqs(SqsRequest::Json);
    }
    let has_action = req.query.is_some_and(|q| q.contains("Action="));
    // The dashboard's login and logout: sluice's own, never an SQS queue URL (account ids are digits).
    if req.method == "POST" && matches!(req.path, "/ui/login" | "/ui/logout") {
        return Route::Admin;
    }
    if req.method == "GET" && !has_action {
        return Route::Admin;
    }
    let mut pairs = query::Pairs::default();
    pairs.add_query(req.query);
    let form_body = req.content_type.is_none_or(|ct| ct.contains("x-www-form-urlencoded"));
    let body_routes = form_body && !req.body.is_empty() && !req.body.starts_with(b"{");
    let by_query = !body_routes && is_sns(|name| pairs.last(name));
    pairs.add_body(req.body);
    let form = pairs.finish();
    if by_query || (body_routes && is_sns(|name| form.get(name))) {
        Route::Sns(form)
    } else {
        Route::Sqs(SqsRequest::Query(form))
    }
}

/// Whether parameters (read by `get`) make a request SNS's.
fn is_sns<'p>(get: impl Fn(&str) -> Option<&'p str>) -> bool {
    match get("Version") {
        Some(v) => v == SNS_VERSION,
        None => matches!(get("Action"), Some("ConfirmSubscription" | "Unsubscribe")),
    }
}

/// An HTTP response to write.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers (request id, `x-amzn-query-error`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Settings of the protocol layer.
#[derive(Clone, Default)]
pub struct ProtocolConfig {
    /// Fixed scheme+authority for queue URLs (e.g. `https://sqs.example.com`); None: from `Host`.
    pub public_base_url: Option<String>,
    /// `--policy-mode`: enforce queue and identity policies, or only log what they would deny.
    pub policy_mode: auth::access::PolicyMode,
}

/// Which protocol a request speaks; the answer (and its errors) use the same one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    Json,
    Query,
}

/// The outcome of one request, for logs and metrics.
pub struct Outcome {
    pub protocol: Protocol,
    /// The operation, when the request named one that exists.
    pub action: Option<&'static str>,
    pub response: Response,
}

/// An error response for failures before a request could be handed to [`handle`] (e.g. a body over
/// the size limit), in the protocol the request seems to speak.
pub fn early_error(protocol: Protocol, e: &ApiError) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    match protocol {
        Protocol::Json => sqs::json_error_response(e, &request_id),
        Protocol::Query => sqs::xml_response(e.wire().status, sqs::render::xml_error(e, &request_id), &request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        headers: &'a http::HeaderMap,
        query: Option<&'a str>,
        content_type: Option<&'a str>,
        body: &'a [u8],
    ) -> Request<'a> {
        Request {
            method: "POST",
            path: "/",
            query,
            headers,
            content_type,
            target: None,
            host: None,
            scheme: "http",
            body,
            identity: None,
            source_ip: None,
        }
    }

    fn routes_to_sns(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> bool {
        let headers = http::HeaderMap::new();
        matches!(route(&request(&headers, query, content_type, body)), Route::Sns(_))
    }

    #[test]
    fn routing() {
        let form = Some("application/x-www-form-urlencoded");
        assert!(routes_to_sns(None, form, b"Action=CreateTopic&Version=2010-03-31&Name=a"));
        assert!(!routes_to_sns(None, form, b"Action=AddPermission&Version=2012-11-05"));
        assert!(routes_to_sns(Some("Action=AddPermission&Version=2010-03-31"), None, b""));
        assert!(routes_to_sns(Some("Action=ConfirmSubscription&TopicArn=x&Token=y"), None, b""));
        assert!(!routes_to_sns(None, Some("application/x-amz-json-1.0"), b"{\"QueueName\":\"a\"}"));
        assert!(!routes_to_sns(Some("Action=ListQueues"), None, b""));
        // A body's Version wins over the query string's when the body is a form.
        assert!(!routes_to_sns(Some("Version=2010-03-31"), form, b"Action=ListQueues&Version=2012-11-05"));
    }

    #[test]
    fn the_form_is_parsed_once_and_keeps_every_parameter() {
        let headers = http::HeaderMap::new();
        let form = Some("application/x-www-form-urlencoded");
        let sqs = request(&headers, None, form, b"Action=ListQueues&Version=2012-11-05");
        assert!(matches!(route(&sqs), Route::Sqs(SqsRequest::Query(f)) if f.action() == Some("ListQueues")));
        // The Version of a text/plain body does not route, but its parameters are the request's.
        let req = request(
            &headers,
            Some("Action=ListTopics&Version=2010-03-31"),
            Some("text/plain"),
            b"Action=CreateTopic&Name=x",
        );
        let Route::Sns(form) = route(&req) else { panic!("routed by the query string") };
        assert_eq!(form.action(), Some("CreateTopic"));
        assert_eq!(form.get("Name"), Some("x"));
        assert!(!routes_to_sns(None, Some("text/plain"), b"Action=ListTopics&Version=2010-03-31"));
        let json = Request { target: Some("AmazonSQS.ListQueues"), ..request(&headers, None, None, b"{}") };
        assert!(matches!(route(&json), Route::Sqs(SqsRequest::Json)));
        let admin = Request { method: "GET", ..request(&headers, Some("x=1"), None, b"") };
        assert!(matches!(route(&admin), Route::Admin));
    }
}
