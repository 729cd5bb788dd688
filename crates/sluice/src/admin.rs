//! sluice's own HTTP endpoints beside the SQS API: health and readiness, Prometheus metrics, the
//! JSON API the dashboard reads (`/api/...`), and the dashboard's static files (`/ui`), which are
//! compiled into the binary. State changes from the dashboard go through the SQS API itself.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use sluice_engine::{Engine, QueueOverview};

/// A response from one of these endpoints.
pub struct AdminResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const STYLE_CSS: &str = include_str!("ui/style.css");

fn json_response(status: u16, value: Value) -> AdminResponse {
    AdminResponse { status, content_type: "application/json", body: value.to_string().into_bytes() }
}

fn text(status: u16, content_type: &'static str, body: &str) -> AdminResponse {
    AdminResponse { status, content_type, body: body.as_bytes().to_vec() }
}

/// Percent-decodes a path segment (queue names are plain, but a browser may encode anything).
fn decode_segment(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn overview_json(q: &QueueOverview, base_url: &str, account: &str) -> Value {
    json!({
        "name": q.name,
        "url": format!("{base_url}/{account}/{}", q.name),
        "arn": q.arn,
        "fifo": q.fifo,
        "visible": q.counts.visible,
        "inflight": q.counts.inflight,
        "delayed": q.counts.delayed,
        "oldest_age_seconds": q.oldest_age_ms.unwrap_or(0) as f64 / 1000.0,
        "bytes": q.counts.bytes,
        "sent_total": q.sent,
        "received_total": q.received,
        "deleted_total": q.deleted,
        "empty_receives_total": q.empty_receives,
        "dead_lettered_total": q.dead_lettered,
        "dlq_arn": q.dlq_arn,
    })
}

/// Answers GET requests for these endpoints; None when the path is not one of them.
pub fn handle(
    engine: &Engine,
    sns: &sluice_sns::Sns,
    metrics: &crate::metrics::Metrics,
    path: &str,
    query: Option<&str>,
    base_url: &str,
) -> Option<AdminResponse> {
    let account = engine.account_id();
    Some(match path {
        // These handlers serve only after recovery (before it, server::serve_while_starting answers
        // /ready with 503), so here the server is live and ready.
        "/health" => text(200, "text/plain", "ok\n"),
        // Degraded (the disk is full): alive, still serving reads, receives and deletes, but sends
        // get 503, so a load balancer should prefer another instance.
        "/ready" => match engine.store().degraded() {
            Some(why) => text(503, "text/plain", &format!("degraded: {why}\n")),
            None => text(200, "text/plain", "ok\n"),
        },
        "/metrics" => {
            let mut body = metrics.render(engine, &sns.overviews());
            crate::metrics::render_denied_deliveries(&mut body, sns.denied_deliveries());
            text(200, "text/plain; version=0.0.4", &body)
        }
        "/api/topics" => {
            let topics: Vec<Value> = sns
                .overviews()
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "arn": t.arn,
                        "fifo": t.fifo,
                        "subscriptions_confirmed": t.subscriptions_confirmed,
                        "subscriptions_pending": t.subscriptions_pending,
                        "published_total": t.published,
                    })
                })
                .collect();
            json_response(200, json!({ "topics": topics }))
        }
        "/favicon.ico" => text(404, "text/plain", "not found\n"),
        "/ui" | "/ui/" | "/ui/index.html" => text(200, "text/html; charset=utf-8", INDEX_HTML),
        "/ui/app.js" => text(200, "text/javascript; charset=utf-8", APP_JS),
        "/ui/style.css" => text(200, "text/css; charset=utf-8", STYLE_CSS),
        "/api/queues" => {
            let queues: Vec<Value> = engine.overviews().iter().map(|q| overview_json(q, base_url, account)).collect();
            json_response(200, json!({ "queues": queues }))
        }
        p => {
            let rest = p.strip_prefix("/api/queues/")?;
            let (name, sub) = match rest.split_once('/') {
                Some((n, s)) => (decode_segment(n), Some(s)),
                None => (decode_segment(rest), None),
            };
            match sub {
                None => queue_detail(engine, &name, base_url),
                Some("peek") => {
                    let max = query
                        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "max"))
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(10)
                        .min(100);
                    match engine.peek(&name, max) {
                        Ok(messages) => {
                            let messages: Vec<Value> = messages
                                .into_iter()
                                .map(|m| {
                                    let attributes: serde_json::Map<String, Value> = m
                                        .attributes
                                        .iter()
                                        .map(|(k, v)| {
                                            let mut a = json!({ "data_type": v.data_type });
                                            if let Some(s) = &v.string_value {
                                                a["string_value"] = json!(s);
                                            }
                                            if let Some(b) = &v.binary_value {
                                                a["binary_value"] = json!(BASE64.encode(b));
                                            }
                                            (k.clone(), a)
                                        })
                                        .collect();
                                    json!({
                                        "message_id": m.message_id,
                                        "body": m.body,
                                        "sent_timestamp": m.sent_ms,
                                        "receive_count": m.receive_count,
                                        "attributes": attributes,
                                    })
                                })
                                .collect();
                            json_response(200, json!({ "messages": messages }))
                        }
                        Err(e) => json_response(404, json!({ "error": e.to_string() })),
                    }
                }
                Some(_) => json_response(404, json!({ "error": "unknown endpoint" })),
            }
        }
    })
}

fn queue_detail(engine: &Engine, name: &str, base_url: &str) -> AdminResponse {
    let detail = (|| -> Result<Value, sluice_engine::EngineError> {
        let overview = engine.overview(name)?;
        let attributes: serde_json::Map<String, Value> =
            engine.get_queue_attributes(name, &["All".to_string()])?.into_iter().map(|(k, v)| (k, json!(v))).collect();
        let tags = engine.list_queue_tags(name)?;
        let sources = engine.dead_letter_source_queues(name)?;
        Ok(json!({
            "name": name,
            "url": format!("{base_url}/{}/{name}", engine.account_id()),
            "arn": overview.arn,
            "attributes": attributes,
            "tags": tags,
            "dead_letter_sources": sources,
            "dlq_name": overview.dlq_arn.as_deref().and_then(|a| a.rsplit(':').next()),
        }))
    })();
    match detail {
        Ok(v) => json_response(200, v),
        Err(e) => json_response(404, json!({ "error": e.to_string() })),
    }
}
