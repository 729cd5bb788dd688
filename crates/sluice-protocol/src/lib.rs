//! The AWS wire layer for sluice: the only crate that knows HTTP-level formats - AWS JSON 1.0, the
//! Query protocol's forms and XML, AWS's error documents. It knows nothing of sockets: the server hands
//! it a [`Request`], [`route`]s it once, and writes back the [`Response`].
//!
//! Layout:
//! - this file: the request and response types and the routing step (`Admin | Sqs | Sns`);
//! - `query`: Query-protocol forms unflattened into the JSON shape of an operation's input;
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
}

/// Which API a request is for. The server routes every request once, with [`route`].
#[derive(Debug)]
pub enum Route {
    /// sluice's own endpoints (`/health`, `/metrics`, the dashboard): a GET without an `Action`.
    Admin,
    /// The SQS API, in the protocol the request speaks.
    Sqs(Protocol),
    /// The SNS API (Query protocol, `Version=2010-03-31`), its form already decoded: the only parse.
    Sns(sns::wire::Form),
}

/// The SNS API version; SQS's is 2012-11-05. Both APIs have actions of the same name (AddPermission), so
/// the version decides.
pub const SNS_VERSION: &str = "2010-03-31";

/// Routes a request: JSON 1.0 (an `X-Amz-Target`) is SQS; a GET without an `Action` is sluice's own; a
/// Query-protocol form with SNS's `Version` (or one of the two actions SNS links carry without one) is
/// SNS; the rest is SQS's Query protocol.
pub fn route(req: &Request<'_>) -> Route {
    if req.target.is_some() {
        return Route::Sqs(Protocol::Json);
    }
    let has_action = req.query.is_some_and(|q| q.contains("Action="));
    if req.method == "GET" && !has_action {
        return Route::Admin;
    }
    match sns::wire::Form::recognise(req.query, req.content_type, req.body) {
        Some(form) => Route::Sns(form),
        None => Route::Sqs(Protocol::Query),
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
