//! The SQS API on the wire: [`handle`] answers a request [`crate::route`] gave to SQS, in the protocol
//! it speaks (an `X-Amz-Target: AmazonSQS.<Action>` header means JSON 1.0; otherwise the form
//! `route` parsed, with `Action=`), decodes an [`action::Action`]
//! (each operation declared once, in [`action`]), runs it through [`dispatch::dispatch`] (one `match`),
//! and renders the [`dispatch::Reply`] or [`error::ApiError`] with [`render`].

mod access;
pub mod action;
pub mod dispatch;
pub mod error;
pub mod render;

use std::sync::Arc;

use sluice_engine::Engine;

use self::action::{Action, Input};
use self::dispatch::{dispatch, Context};
use self::error::ApiError;
use crate::query::Form;
use crate::{Outcome, Protocol, ProtocolConfig, Request, Response, SqsRequest, MAX_REQUEST_BYTES};

/// Handles one request end to end; `sqs` is what [`crate::route`] made of it.
pub async fn handle(engine: &Arc<Engine>, config: &ProtocolConfig, req: &Request<'_>, sqs: SqsRequest<'_>) -> Outcome {
    let request_id = uuid::Uuid::new_v4().to_string();
    let host_url;
    let base_url = match &config.public_base_url {
        Some(u) => u.as_str(),
        None => {
            host_url = format!("{}://{}", req.scheme, req.host.unwrap_or("127.0.0.1:9324"));
            host_url.as_str()
        }
    };
    let caller = crate::auth::access::Caller {
        identity: req.identity,
        secure_transport: req.scheme == "https",
        source_ip: req.source_ip,
        mode: config.policy_mode,
    };
    let ctx = Context { base_url, caller };
    let form = match sqs {
        SqsRequest::Query(form) => form,
        SqsRequest::Json => {
            let target = req.target.unwrap_or_default();
            let name = target.strip_prefix("AmazonSQS.").unwrap_or(target);
            let result = handle_json(engine, &ctx, req, target, name).await;
            let response = match result {
                Ok(reply) => json_response(200, render::json_reply(&reply), &request_id, None),
                Err(e) => json_error_response(&e, &request_id),
            };
            return Outcome { protocol: Protocol::Json, action: action::operation(name), response };
        }
    };
    let mut action = None;
    let result = match decode_query(req, form, &mut action) {
        Ok(decoded) => dispatch(engine, &ctx, decoded).await,
        Err(e) => Err(e),
    };
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

/// Decodes a Query-protocol request from its form; `action_name` is set as soon as the `Action` is
/// known (for metrics, even when decoding then fails).
fn decode_query(req: &Request<'_>, form: Form<'_>, action_name: &mut Option<&'static str>) -> Result<Action, ApiError> {
    if req.body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::RequestTooLarge(req.body.len(), MAX_REQUEST_BYTES));
    }
    // The checks in the order of the old two-pass parse: the query string's encoding, then whether
    // the body is a form at all, then its encoding.
    if let Some(fault) = form.query_fault() {
        return Err(fault.to_api_error());
    }
    if !req.body.is_empty() {
        let is_form = req.content_type.is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {} is not supported; send a form (application/x-www-form-urlencoded) or JSON with X-Amz-Target.",
                req.content_type.unwrap_or("")
            )));
        }
        if let Some(fault) = form.body_fault() {
            return Err(fault.to_api_error());
        }
    }
    let name = form.action().ok_or(ApiError::MissingAction)?;
    let Some(operation) = action::operation(name) else {
        return Err(action::unknown_operation(name));
    };
    *action_name = Some(operation);
    let members = Action::query_members(operation).unwrap_or(&[]);
    let value = form.into_json(members, req.path)?;
    Action::decode(operation, Input::Value(value))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{route, Route};

    /// A SendMessageBatch form as botocore sends it: 10 entries of ~100-byte bodies with escapes
    /// and one string attribute each.
    pub(crate) fn batch_form() -> String {
        let mut body = String::from(
            "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=http%3A%2F%2F127.0.0.1%3A9324%2F000000000000%2Fbench-q",
        );
        for i in 1..=10 {
            body.push_str(&format!(
                "&SendMessageBatchRequestEntry.{i}.Id=m{i}&SendMessageBatchRequestEntry.{i}.MessageBody=hello+world+this+is+message+{i}+of+the+batch%2C+with+some+text+to+make+it+about+a+hundred+bytes+long%21\
                 &SendMessageBatchRequestEntry.{i}.MessageAttribute.1.Name=trace&SendMessageBatchRequestEntry.{i}.MessageAttribute.1.Value.DataType=String\
                 &SendMessageBatchRequestEntry.{i}.MessageAttribute.1.Value.StringValue=abc-{i}"
            ));
        }
        body
    }

    /// The cost of routing and decoding a Query request (every Query request pays it), for
    /// instruction counts: `DECODE_ITERATIONS=N valgrind --tool=callgrind <the crate's test binary>
    /// --ignored --exact sqs::tests::query_decode_cost`, at two values of N; the difference over
    /// the difference in N is the cost of one request (docs/BENCHMARKS.md has the figures).
    #[test]
    #[ignore]
    fn query_decode_cost() {
        let n: usize = std::env::var("DECODE_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        let body = batch_form();
        let headers = http::HeaderMap::new();
        let mut entries = 0;
        for _ in 0..n {
            let req = Request {
                method: "POST",
                path: "/",
                query: None,
                headers: &headers,
                content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
                target: None,
                host: Some("127.0.0.1:9324"),
                scheme: "http",
                body: body.as_bytes(),
                identity: None,
                source_ip: None,
            };
            let Route::Sqs(SqsRequest::Query(form)) = route(&req) else { panic!("not SQS Query") };
            let mut name = None;
            if let Action::SendMessageBatch(b) = decode_query(&req, form, &mut name).unwrap() {
                entries += b.entries.map_or(0, |e| e.len());
            }
        }
        assert_eq!(entries, n * 10);
    }

    #[test]
    fn query_checks_come_in_order() {
        let headers = http::HeaderMap::new();
        let decode = |query: Option<&'static str>, content_type: Option<&'static str>, body: &'static [u8]| {
            let req = Request {
                method: "POST",
                path: "/",
                query,
                headers: &headers,
                content_type,
                target: None,
                host: None,
                scheme: "http",
                body,
                identity: None,
                source_ip: None,
            };
            let form = Form::parse(req.query, req.body);
            let mut name = None;
            (decode_query(&req, form, &mut name).map(|a| a.name()), name)
        };
        // The query string's encoding first, then the body's media type, then its encoding.
        assert!(matches!(
            decode(Some("%zz"), Some("text/plain"), b"x"),
            (Err(ApiError::MalformedQueryString(_)), None)
        ));
        assert!(matches!(decode(None, Some("text/plain"), b"%zz"), (Err(ApiError::UnsupportedMediaType(_)), None)));
        assert!(matches!(decode(None, None, b"Action=ListQueues&%zz"), (Err(ApiError::MalformedQueryString(_)), None)));
        assert!(matches!(decode(None, None, b"QueueName=q"), (Err(ApiError::MissingAction), None)));
        assert!(matches!(decode(None, None, b"Action=Nope"), (Err(ApiError::UnknownOperation(_)), None)));
        // The operation is known (for metrics) even when its members do not decode.
        assert!(matches!(
            decode(None, None, b"Action=ReceiveMessage&MaxNumberOfMessages=x"),
            (Err(ApiError::Engine(_)), Some("ReceiveMessage"))
        ));
        assert!(matches!(decode(Some("Action=ListQueues"), None, b""), (Ok("ListQueues"), Some("ListQueues"))));
    }
}
