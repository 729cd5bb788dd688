//! sluice's own HTTP endpoints beside the SQS API: health and readiness, Prometheus metrics, the
//! JSON API the dashboard reads (`/api/...`), the dashboard's static files (`/ui`), which are
//! compiled into the binary, and its login (`/ui/session`, `POST /ui/login`, `POST /ui/logout`;
//! sessions are [`crate::session`]'s). State changes from the dashboard go through the SQS API
//! itself.
//!
//! Every answer here carries [`security_headers`]: a Content-Security-Policy that allows only
//! this server's own script, style and connections (the UI has no inline script or style), no
//! framing, no MIME sniffing, no referrer. `/metrics` requires `Authorization: Bearer <token>`
//! when `--metrics-token` is set (401 otherwise); `/health` and `/ready` never do.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sluice_engine::{Engine, QueueOverview};
use sluice_protocol::auth::Secret;
use sluice_protocol::Request;

use crate::server::AppState;

/// A response from one of these endpoints.
pub struct AdminResponse {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers: the security headers, `Set-Cookie`, `Cache-Control`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The dashboard's Content-Security-Policy: its own files and API only (the favicon is a
/// `data:` URL). Nothing inline runs: app.js is a file and styles are in style.css.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every answer of these endpoints carries.
pub fn security_headers() -> [(&'static str, String); 4] {
    [
        ("content-security-policy", CSP.to_string()),
        ("x-frame-options", "DENY".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
        ("referrer-policy", "no-referrer".to_string()),
    ]
}

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const STYLE_CSS: &str = include_str!("ui/style.css");

fn json_response(status: u16, value: Value) -> AdminResponse {
    // Message bodies and session tokens: no cache keeps a copy.
    let headers = vec![("cache-control", "no-store".to_string())];
    AdminResponse { status, content_type: "application/json", headers, body: value.to_string().into_bytes() }
}

fn text(status: u16, content_type: &'static str, body: &str) -> AdminResponse {
    AdminResponse { status, content_type, headers: Vec::new(), body: body.as_bytes().to_vec() }
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

/// Answers requests for these endpoints (routed as [`Route::Admin`](sluice_protocol::Route):
/// GETs, and the login's POSTs), with the security headers; None when the path is not one of
/// them. `base_url`: how the client reaches this server (its scheme decides the cookie's
/// `Secure`).
pub fn handle(state: &AppState, req: &Request<'_>, base_url: &str) -> Option<AdminResponse> {
    let mut response = route(state, req, base_url)?;
    response.headers.extend(security_headers());
    Some(response)
}

fn route(state: &AppState, req: &Request<'_>, base_url: &str) -> Option<AdminResponse> {
    let (engine, sns, metrics) = (&*state.engine, &state.sns, &state.metrics);
    let (path, query) = (req.path, req.query);
    let account = engine.account_id();
    let secure = base_url.starts_with("https://");
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
            if !metrics_token_ok(state.metrics_token.as_ref(), req) {
                let mut r = text(401, "text/plain", "401 Unauthorized: /metrics needs Authorization: Bearer <token>\n");
                r.headers.push(("www-authenticate", "Bearer realm=\"sluice metrics\"".to_string()));
                return Some(r);
            }
            let mut body = metrics.render(engine, &sns.overviews());
            crate::metrics::render_denied_deliveries(&mut body, sns.denied_deliveries());
            text(200, "text/plain; version=0.0.4", &body)
        }
        "/ui/session" => session_info(state, req),
        "/ui/login" if req.method == "POST" => login(state, req, secure),
        "/ui/logout" if req.method == "POST" => logout(state, req, secure),
        "/ui/login" | "/ui/logout" => json_response(405, json!({ "error": "use POST" })),
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

/// Whether `/metrics` may be served: no token configured, or `Authorization: Bearer <token>`
/// (compared in constant time).
fn metrics_token_ok(token: Option<&Secret>, req: &Request<'_>) -> bool {
    let Some(token) = token else { return true };
    let given = req
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else { return false };
    // MAC both under a per-process random key, then compare the MACs in constant time.
    let mac = |s: &str| {
        let mut m = Hmac::<Sha256>::new_from_slice(metrics_compare_key()).expect("HMAC takes any key length");
        m.update(s.as_bytes());
        m
    };
    mac(given).verify_slice(&mac(token.expose()).finalize().into_bytes()).is_ok()
}

fn metrics_compare_key() -> &'static [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source");
        key
    })
}

/// `GET /ui/session`: whether the dashboard needs a login and, when logged in, who and the CSRF
/// token for state-changing calls (the cookie itself is HttpOnly; the page learns its token here).
fn session_info(state: &AppState, req: &Request<'_>) -> AdminResponse {
    if state.auth.is_none() {
        return json_response(200, json!({ "auth_required": false, "logged_in": false }));
    }
    match state.sessions.lookup(req.headers) {
        Some(s) => json_response(200, session_json(&s)),
        None => json_response(200, json!({ "auth_required": true, "logged_in": false })),
    }
}

fn session_json(s: &crate::session::Session) -> Value {
    json!({
        "auth_required": true,
        "logged_in": true,
        "access_key_id": s.identity.access_key_id(),
        "account_id": s.identity.account_id(),
        "principal_arn": s.identity.principal_arn(),
        "csrf_token": s.csrf_token,
    })
}

/// `POST /ui/login` with `access_key_id` and `secret_access_key`, as JSON or a form.
fn login(state: &AppState, req: &Request<'_>, secure: bool) -> AdminResponse {
    let Some(keys) = &state.auth else {
        return json_response(400, json!({ "error": "authentication is off: the dashboard needs no login" }));
    };
    let field = |name: &str| -> Option<String> {
        if req.content_type.is_some_and(|ct| ct.contains("json")) || req.body.starts_with(b"{") {
            let v: Value = serde_json::from_slice(req.body).ok()?;
            v.get(name)?.as_str().map(str::to_string)
        } else {
            form_urlencoded::parse(req.body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
        }
    };
    let (Some(id), Some(secret)) = (field("access_key_id"), field("secret_access_key")) else {
        return json_response(400, json!({ "error": "send access_key_id and secret_access_key" }));
    };
    let Some(identity) = keys.check_secret(&id, &secret) else {
        // Neither field is logged: a secret typed into the id field would land in the log.
        tracing::warn!(source_ip = ?req.source_ip, "dashboard login refused");
        return json_response(401, json!({ "error": "The access key id or secret is wrong." }));
    };
    tracing::info!(access_key_id = %id, account = identity.account_id(), "dashboard login");
    let (cookie, session) = state.sessions.open(identity);
    let mut r = json_response(200, session_json(&session));
    r.headers.push(("set-cookie", crate::session::set_cookie(&cookie, secure)));
    r
}

/// `POST /ui/logout`: ends the session (with its CSRF token: another page cannot log the user
/// out) and deletes the cookie.
fn logout(state: &AppState, req: &Request<'_>, secure: bool) -> AdminResponse {
    if let Some(session) = state.sessions.lookup(req.headers) {
        let token = req.headers.get(crate::session::CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !crate::session::csrf_matches(&state.sessions, &session, token) {
            return json_response(403, json!({ "error": "logout needs the session's CSRF token" }));
        }
        state.sessions.close(req.headers);
    }
    let mut r = json_response(200, json!({ "logged_in": false }));
    r.headers.push(("set-cookie", crate::session::clear_cookie(secure)));
    r
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
