//! The HTTP listener: turns hyper requests into [`sluice_protocol::Request`]s and back, and shuts
//! down gracefully (stop accepting, release long polls, finish in-flight requests, flush the store).
//! Before that, while the store is recovered at startup, [`serve_while_starting`] answers on the
//! same socket: alive (`/health` 200) but not ready (`/ready` and every API request 503).
//!
//! HTTP and HTTPS share this code path: a [`Listener`] with a TLS acceptor (`--tls-cert`,
//! `--tls-key`; see [`crate::tls`]) runs the handshake in the connection's task, then serves the
//! decrypted stream exactly like a plain one. Queue URLs built from the `Host` header then start
//! with `https://`.
//!
//! Every connection is held to [`ConnectionLimits`] (see [`crate::limits`]): a header, body and
//! idle timeout, and a maximum number of open connections beyond which clients are refused with
//! a 503.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use sluice_engine::Engine;
use sluice_protocol::{early_error, ApiError, Protocol, ProtocolConfig, Route, SqsRequest, MAX_REQUEST_BYTES};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::limits::{Activity, ConnectionLimits, Tracked};
use crate::metrics::Metrics;

/// The bound socket and, for HTTPS, the acceptor every connection's TLS handshake goes through.
pub struct Listener {
    pub tcp: TcpListener,
    /// None: plain HTTP.
    pub tls: Option<TlsAcceptor>,
}

impl Listener {
    /// A plain-HTTP listener.
    pub fn plain(tcp: TcpListener) -> Listener {
        Listener { tcp, tls: None }
    }

    /// `"https"` or `"http"`: the scheme of URLs that point back at this listener.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// How long a client may take to finish its TLS handshake (or, during startup and when refused,
/// to send its one request): a peer that connects and sends nothing must not hold a task (and a
/// graceful-shutdown slot) forever. Serving, the handshake gets the header read timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the TLS handshake if there is an acceptor and hands the stream to `serve`. A failed
/// handshake (plain HTTP sent to the HTTPS port, an untrusted certificate on the client side, a
/// timeout) ends the connection and is logged at debug level: it is the client's problem.
async fn with_tls<F, Fut>(stream: TcpStream, tls: Option<TlsAcceptor>, handshake_timeout: Duration, serve: F)
where
    F: FnOnce(Box<dyn Io>) -> Fut,
    Fut: Future<Output = ()>,
{
    match tls {
        None => serve(Box::new(stream)).await,
        Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => serve(Box::new(tls_stream)).await,
            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
    }
}

/// A connection's byte stream, plain or TLS. Boxed so one hyper connection type serves both:
/// one dynamic call per read or write, next to a syscall, is not worth a second copy of the code.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What every connection shares.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub protocol: ProtocolConfig,
    pub metrics: Metrics,
    /// The SNS-compatible topics API (requests with `Version=2010-03-31`).
    pub sns: sluice_sns::Sns,
    /// The Host / Origin / unsigned-GET checks every request passes first.
    pub guard: crate::guard::Guard,
    /// The access keys requests must be signed with; None: `--auth off` (see [`crate::auth`]).
    pub auth: Option<Arc<sluice_protocol::auth::KeyRing>>,
    /// Connection limits and timeouts.
    pub limits: ConnectionLimits,
    /// The dashboard's login sessions (used when `auth` is set).
    pub sessions: crate::session::Sessions,
    /// `--metrics-token`: `/metrics` then needs it as a bearer token.
    pub metrics_token: Option<sluice_protocol::auth::Secret>,
}

/// Decrements the open-connections gauge when a connection task ends.
struct ConnectionGuard(Arc<AppState>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.metrics.open_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves `listener` during startup until `ready` fires, then hands the listener back for [`run`].
/// Load balancers and orchestrators see a live process that is not ready yet instead of a refused
/// connection; SDKs get a retryable 503 `ServiceUnavailable`. Connections are closed after each
/// response, so clients reconnect to the real server once it is up.
pub async fn serve_while_starting(listener: Listener, ready: tokio::sync::oneshot::Receiver<()>) -> Listener {
    tokio::pin!(ready);
    loop {
        let stream = tokio::select! {
            _ = &mut ready => return listener,
            accepted = listener.tcp.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::spawn(answer_once(
            stream,
            listener.tls.clone(),
            "recovering",
            "sluice is recovering its store; retry shortly.",
        ));
    }
}

/// Serves one request on `stream` with a 503 (`/health` stays 200: the process is alive) and
/// closes it, all within [`HANDSHAKE_TIMEOUT`]. Used while the store recovers and for
/// connections beyond the limit.
async fn answer_once(stream: TcpStream, tls: Option<TlsAcceptor>, not_ready: &'static str, message: &'static str) {
    let serve = with_tls(stream, tls, HANDSHAKE_TIMEOUT, move |io| async move {
        let service = service_fn(move |req: hyper::Request<Incoming>| async move {
            let response = unavailable_response(&req, not_ready, message);
            // Read the body before answering (closing with unread bytes would make the kernel
            // reset the connection, and the client might never see the answer), discarding it as
            // it comes: refusals must not buffer bodies.
            let mut body = req.into_body();
            let mut seen = 0;
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > MAX_REQUEST_BYTES {
                    break;
                }
            }
            Ok::<_, Infallible>(response)
        });
        let _ = http1::Builder::new().keep_alive(false).serve_connection(TokioIo::new(io), service).await;
    });
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, serve).await;
}

fn unavailable_response(
    req: &hyper::Request<Incoming>,
    not_ready: &'static str,
    message: &'static str,
) -> Response<Full<Bytes>> {
    let plain = |status: u16, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
        r
    };
    match req.uri().path() {
        "/health" => plain(200, "ok\n".into()),
        "/ready" => plain(503, format!("{not_ready}\n")),
        _ => {
            let protocol = if req.headers().contains_key("x-amz-target") { Protocol::Json } else { Protocol::Query };
            let err = ApiError::ServiceUnavailable(message.into());
            to_hyper(early_error(protocol, &err))
        }
    }
}

/// How many refusals (503 answers to connections beyond the limit) may be in progress at once.
/// Beyond that, during a flood, further connections are closed straight after accept: answering
/// them would cost the descriptors and tasks the limit is there to save.
const REFUSALS_AT_ONCE: usize = 64;

/// Backs off after failed accepts (out of descriptors, out of memory): 10 ms doubling up to 1 s,
/// so a persistent failure neither spins a core nor floods the log.
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    async fn failed(&mut self, e: &std::io::Error) {
        self.failures += 1;
        let delay = Duration::from_millis(5u64 << self.failures.min(8)).min(Duration::from_secs(1));
        // The first failure of a run, then every 100th: one line per incident, not per retry.
        if self.failures % 100 == 1 {
            tracing::warn!(error = %e, failures = self.failures, retry_in = ?delay, "accept failed");
        }
        tokio::time::sleep(delay).await;
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
            self.failures = 0;
        }
    }
}

/// How long shutdown waits for in-flight requests before closing connections anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `listener` until `shutdown` completes, then drains connections and flushes the store.
pub async fn run(listener: Listener, shutdown: impl Future<Output = ()>, state: Arc<AppState>) {
    let graceful = GracefulShutdown::new();
    let scheme = listener.scheme();
    let limits = state.limits;
    let max_connections = crate::limits::effective_max_connections(limits.max_connections);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSALS_AT_ONCE));
    let mut backoff = AcceptBackoff { failures: 0 };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(conn) => {
                    backoff.succeeded();
                    conn
                }
                Err(e) => {
                    backoff.failed(&e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the limit. A 503 ServiceUnavailable rather than a bare close: it says why, and
            // the AWS SDKs retry it with backoff (a reset connection is retried too, but reads as
            // a network fault). The answer is bounded in time and in how many run at once.
            state.metrics.refused_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if refusals.available_permits() == REFUSALS_AT_ONCE {
                tracing::warn!(%peer, max_connections, "connection limit reached; refusing");
            }
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                let tls = listener.tls.clone();
                tokio::spawn(async move {
                    answer_once(
                        stream,
                        tls,
                        "too many connections",
                        "sluice has too many open connections; retry shortly.",
                    )
                    .await;
                    drop(refusal);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn_state = state.clone();
        let activity = Arc::new(Activity::default());
        let conn_activity = activity.clone();
        let service = service_fn(move |req| {
            let state = conn_state.clone();
            let activity = conn_activity.clone();
            async move {
                let _handling = activity.handling();
                Ok::<_, Infallible>(serve_one(&state, scheme, peer.ip(), req).await)
            }
        });
        // Taken here, before the handshake: shutdown waits for this connection from now on
        // (a handshake in progress is bounded by the header read timeout).
        let watcher = graceful.watcher();
        state.metrics.open_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let guard = ConnectionGuard(state.clone());
        tokio::spawn(with_tls(stream, listener.tls.clone(), limits.header_read_timeout, move |io| async move {
            let _guard = guard;
            let _slot = slot;
            let io = Tracked { io, activity: activity.clone() };
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(io), service);
            // Dropping the connection when a timeout expires closes it.
            tokio::select! {
                ended = watcher.watch(conn) => if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                },
                what = crate::limits::expired(&activity, &limits) => {
                    tracing::debug!(%peer, "closing connection: {what}");
                }
            }
        }));
    }
    tracing::info!("shutting down: releasing long polls and finishing in-flight requests");
    drop(listener);
    state.engine.begin_shutdown();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not finish within {DRAIN_TIMEOUT:?}");
    }
    state.engine.close().await;
    tracing::info!("store flushed; bye");
}

fn header_str(req: &hyper::http::request::Parts, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `peer`: the client's address (`aws:SourceIp` in policies).
async fn serve_one(
    state: &AppState,
    scheme: &'static str,
    peer: std::net::IpAddr,
    req: hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let target = header_str(&parts, "x-amz-target");
    let protocol = if target.is_some() { Protocol::Json } else { Protocol::Query };
    // The whole body within its deadline: a client that stalls or sends fewer bytes than its
    // Content-Length gets an answer (and the connection closed) instead of holding it forever.
    let collected =
        tokio::time::timeout(state.limits.body_read_timeout, Limited::new(body, MAX_REQUEST_BYTES).collect());
    let body = match collected.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Err(_) => {
            let limit = state.limits.body_read_timeout;
            let err = ApiError::RequestTimeout(format!("The request body was not received within {limit:?}."));
            let mut response = to_hyper(early_error(protocol, &err));
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            return response;
        }
        Ok(Err(e)) => {
            let err = if e.is::<http_body_util::LengthLimitError>() {
                ApiError::RequestTooLarge(MAX_REQUEST_BYTES + 1, MAX_REQUEST_BYTES)
            } else {
                ApiError::Serialization(format!("Could not read the request body: {e}"))
            };
            return to_hyper(early_error(protocol, &err));
        }
    };
    let request = sluice_protocol::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        content_type: header_str(&parts, header::CONTENT_TYPE),
        target,
        host: header_str(&parts, header::HOST),
        scheme,
        body: &body,
        identity: None,
        source_ip: Some(peer),
    };
    let route = sluice_protocol::route(&request);
    if let Err(refusal) = state.guard.check(&request, &route) {
        return to_hyper(crate::guard::refuse(&refusal, &route));
    }
    let identity = match crate::auth::authenticate(state, &request, &route) {
        Ok(identity) => identity,
        Err(denied) => {
            state.metrics.record(None, denied.status, started.elapsed().as_secs_f64());
            return to_hyper(denied);
        }
    };
    let request = sluice_protocol::Request { identity: identity.as_ref(), ..request };
    let sqs = match route {
        Route::Admin => {
            let base_url = match &state.protocol.public_base_url {
                Some(u) => u.trim_end_matches('/').to_string(),
                None => format!("{scheme}://{}", request.host.unwrap_or("127.0.0.1:9324")),
            };
            // An unknown path falls through to the SQS Query protocol, which answers with AWS's error.
            if let Some(r) = crate::admin::handle(state, &request, &base_url) {
                let (status, content_type, headers) = (r.status, r.content_type, r.headers);
                return to_hyper(sluice_protocol::Response { status, content_type, headers, body: r.body });
            }
            SqsRequest::unserved(&request)
        }
        Route::Sns(form) => {
            let caller = sluice_protocol::auth::access::Caller {
                identity: request.identity,
                secure_transport: scheme == "https",
                source_ip: request.source_ip,
                mode: state.protocol.policy_mode,
            };
            let response = state.sns.handle_form(&form, request.host, scheme, &caller).await;
            let action = form.action().map(|a| format!("SNS.{a}"));
            state.metrics.record(action.as_deref(), response.status, started.elapsed().as_secs_f64());
            return to_hyper(response);
        }
        Route::Sqs(sqs) => sqs,
    };
    let outcome = sluice_protocol::handle(&state.engine, &state.protocol, &request, sqs).await;
    state.metrics.record(outcome.action, outcome.response.status, started.elapsed().as_secs_f64());
    tracing::debug!(
        action = outcome.action.unwrap_or("-"),
        protocol = ?outcome.protocol,
        status = outcome.response.status,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    to_hyper(outcome.response)
}

fn to_hyper(r: sluice_protocol::Response) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, r.content_type);
    for (name, value) in r.headers {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(Bytes::from(r.body))).unwrap_or_else(|_| {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"internal error")));
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn request(addr: std::net::SocketAddr, head: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    async fn post(addr: std::net::SocketAddr, headers: &str, body: &str) -> String {
        let head = format!("POST / HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len());
        request(addr, &head).await
    }

    #[tokio::test]
    async fn while_starting_alive_but_not_ready_then_hands_the_listener_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ready, wait) = tokio::sync::oneshot::channel();
        let starting = tokio::spawn(serve_while_starting(Listener::plain(listener), wait));
        let health = request(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        let ready_probe = request(addr, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ready_probe.starts_with("HTTP/1.1 503"), "{ready_probe}");
        let json = "X-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\n";
        let sqs = post(addr, json, "{}").await;
        assert!(sqs.starts_with("HTTP/1.1 503"), "{sqs}");
        assert!(sqs.contains("com.amazon.coral.service#ServiceUnavailable"), "{sqs}");
        let form = "Content-Type: application/x-www-form-urlencoded\r\n";
        let query = post(addr, form, "Action=ListQueues&Version=2012-11-05").await;
        assert!(query.contains("<Code>ServiceUnavailable</Code>"), "{query}");
        ready.send(()).unwrap();
        let listener = starting.await.unwrap();
        assert_eq!(listener.tcp.local_addr().unwrap(), addr, "the same socket goes on to the real server");
    }
}
