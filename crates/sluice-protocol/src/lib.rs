//! The SQS wire protocols for sluice. The only crate that knows JSON 1.0, the Query protocol's forms
//! and XML, and AWS's error formats. It knows nothing of sockets: the server hands it a [`Request`]
//! and writes back the [`Response`].
//!
//! Flow: [`handle`] picks the protocol (an `X-Amz-Target: AmazonSQS.<Action>` header means JSON 1.0;
//! otherwise form parameters with `Action=`), decodes an [`action::Action`], runs it through
//! [`dispatch::dispatch`] (one `match`), and renders the [`dispatch::Reply`] or [`error::ApiError`]
//! with [`render`].
//!
//! Requests are not authenticated: SigV4 signatures are accepted unverified (as ElasticMQ and
//! LocalStack do by default).

pub mod action;
pub mod dispatch;
pub mod error;
pub mod query;
pub mod render;

use std::sync::Arc;

use sluice_engine::Engine;

use crate::action::{Action, Input};
use crate::dispatch::{dispatch, Context};
use crate::error::ApiError;
use crate::query::Params;

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
    pub body: &'a [u8],
}

/// Which API a request is for. The server routes every request once, with [`route`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Route {
    /// sluice's own endpoints (`/health`, `/metrics`, the dashboard): a GET without an `Action`.
    Admin,
    /// The SQS API, in the protocol the request speaks.
    Sqs(Protocol),
    /// The SNS API (Query protocol, `Version=2010-03-31`).
    Sns,
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
    if is_sns_form(req) {
        Route::Sns
    } else {
        Route::Sqs(Protocol::Query)
    }
}

fn is_sns_form(req: &Request<'_>) -> bool {
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
    if let Some(q) = req.query {
        scan(q.as_bytes());
    }
    let form_body = req.content_type.is_none_or(|ct| ct.contains("x-www-form-urlencoded"));
    if form_body && !req.body.is_empty() && !req.body.starts_with(b"{") {
        scan(req.body);
    }
    match version.as_deref() {
        Some(v) => v == SNS_VERSION,
        // The links in SNS's confirmation and unsubscribe messages carry no Version.
        None => matches!(action.as_deref(), Some("ConfirmSubscription" | "Unsubscribe")),
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

/// Handles one request end to end.
pub async fn handle(engine: &Arc<Engine>, config: &ProtocolConfig, req: &Request<'_>) -> Outcome {
    let request_id = uuid::Uuid::new_v4().to_string();
    let host_url;
    let base_url = match &config.public_base_url {
        Some(u) => u.as_str(),
        None => {
            host_url = format!("http://{}", req.host.unwrap_or("127.0.0.1:9324"));
            host_url.as_str()
        }
    };
    let ctx = Context { base_url };
    if let Some(target) = req.target {
        let name = target.strip_prefix("AmazonSQS.").unwrap_or(target);
        let result = handle_json(engine, &ctx, req, target, name).await;
        let response = match result {
            Ok(reply) => json_response(200, render::json_reply(&reply), &request_id, None),
            Err(e) => json_error_response(&e, &request_id),
        };
        return Outcome { protocol: Protocol::Json, action: action::operation(name), response };
    }
    let mut action = None;
    let result = handle_query(engine, &ctx, req, &mut action).await;
    let response = match (&result, action) {
        (Ok(reply), Some(a)) => xml_response(200, render::xml_reply(a, reply, &request_id), &request_id),
        (Err(e), _) => xml_response(e.wire().status, render::xml_error(e, &request_id), &request_id),
        (Ok(_), None) => xml_response(400, render::xml_error(&ApiError::MissingAction, &request_id), &request_id),
    };
    Outcome { protocol: Protocol::Query, action, response }
}

async fn handle_json(
    engine: &Arc<Engine>,
    ctx: &Context<'_>,
    req: &Request<'_>,
    target: &str,
    action: &str,
) -> Result<dispatch::Reply, ApiError> {
    if !target.starts_with("AmazonSQS.") {
        return Err(ApiError::UnknownOperation(format!("Unknown target {target}.")));
    }
    if let Some(ct) = req.content_type {
        if !ct.contains("json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {ct} is not supported with X-Amz-Target; use application/x-amz-json-1.0."
            )));
        }
    }
    if req.body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::RequestTooLarge(req.body.len(), MAX_REQUEST_BYTES));
    }
    let action = Action::decode(action, Input::Json(req.body))?;
    dispatch(engine, ctx, action).await
}

async fn handle_query(
    engine: &Arc<Engine>,
    ctx: &Context<'_>,
    req: &Request<'_>,
    action_name: &mut Option<&'static str>,
) -> Result<dispatch::Reply, ApiError> {
    if req.body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::RequestTooLarge(req.body.len(), MAX_REQUEST_BYTES));
    }
    let mut params = Params::new();
    if let Some(q) = req.query {
        params.parse(q.as_bytes())?;
    }
    if !req.body.is_empty() {
        let is_form = req.content_type.map_or(true, |ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {} is not supported; send a form (application/x-www-form-urlencoded) or JSON with X-Amz-Target.",
                req.content_type.unwrap_or("")
            )));
        }
        params.parse(req.body)?;
    }
    let action = params.get("Action").ok_or(ApiError::MissingAction)?;
    *action_name = action::operation(&action);
    let value = params.to_json(&action, req.path)?;
    let decoded = Action::decode(&action, Input::Value(value))?;
    dispatch(engine, ctx, decoded).await
}

fn json_response(status: u16, body: Vec<u8>, request_id: &str, query_error: Option<String>) -> Response {
    let mut headers = vec![("x-amzn-requestid", request_id.to_string())];
    if let Some(q) = query_error {
        headers.push(("x-amzn-query-error", q));
    }
    Response { status, content_type: "application/x-amz-json-1.0", headers, body }
}

fn json_error_response(e: &ApiError, request_id: &str) -> Response {
    let w = e.wire();
    let query_error = format!("{};{}", w.query_code, if w.sender_fault { "Sender" } else { "Receiver" });
    json_response(w.status, render::json_error(e), request_id, Some(query_error))
}

fn xml_response(status: u16, body: Vec<u8>, request_id: &str) -> Response {
    Response { status, content_type: "text/xml", headers: vec![("x-amzn-requestid", request_id.to_string())], body }
}

/// An error response for failures before a request could be handed to [`handle`] (e.g. a body over
/// the size limit), in the protocol the request seems to speak.
pub fn early_error(protocol: Protocol, e: &ApiError) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    match protocol {
        Protocol::Json => json_error_response(e, &request_id),
        Protocol::Query => xml_response(e.wire().status, render::xml_error(e, &request_id), &request_id),
    }
}
