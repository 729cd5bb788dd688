//! The SQS API on the wire: [`handle`] picks the protocol (an `X-Amz-Target: AmazonSQS.<Action>`
//! header means JSON 1.0; otherwise form parameters with `Action=`), decodes an [`action::Action`]
//! (each operation declared once, in [`action`]), runs it through [`dispatch::dispatch`] (one `match`),
//! and renders the [`dispatch::Reply`] or [`error::ApiError`] with [`render`].

pub mod action;
pub mod dispatch;
pub mod error;
pub mod render;

use std::sync::Arc;

use sluice_engine::Engine;

use self::action::{Action, Input};
use self::dispatch::{dispatch, Context};
use self::error::ApiError;
use crate::query::Params;
use crate::{Outcome, Protocol, ProtocolConfig, Request, Response, MAX_REQUEST_BYTES};

/// Handles one request end to end.
pub async fn handle(engine: &Arc<Engine>, config: &ProtocolConfig, req: &Request<'_>) -> Outcome {
    let request_id = uuid::Uuid::new_v4().to_string();
    let host_url;
    let base_url = match &config.public_base_url {
        Some(u) => u.as_str(),
        None => {
            host_url = format!("{}://{}", req.scheme, req.host.unwrap_or("127.0.0.1:9324"));
            host_url.as_str()
        }
    };
    let ctx = Context { base_url, identity: req.identity };
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
        let is_form = req.content_type.is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
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

pub(crate) fn json_error_response(e: &ApiError, request_id: &str) -> Response {
    let w = e.wire();
    let query_error = format!("{};{}", w.query_code, if w.sender_fault { "Sender" } else { "Receiver" });
    json_response(w.status, render::json_error(e), request_id, Some(query_error))
}

pub(crate) fn xml_response(status: u16, body: Vec<u8>, request_id: &str) -> Response {
    Response { status, content_type: "text/xml", headers: vec![("x-amzn-requestid", request_id.to_string())], body }
}
