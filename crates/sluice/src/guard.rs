//! The checks every request passes before it is served, in every mode (signed or not): no web
//! page may drive this server, neither from its own origin nor by DNS rebinding. The server calls
//! [`Guard::check`] once per request, after routing; a refusal is answered 403 in the API's own
//! format ([`refuse`]: SQS `AccessDenied`, SNS `AuthorizationError`).
//!
//! 1. **Host** (DNS rebinding: a page on `rebind.attacker.example` whose name then resolves to
//!    127.0.0.1 talks to sluice as its own origin, so the browser lets it read the answers): the
//!    `Host` must be one of this server's names. Allowed: any IP address (a rebinding needs a DNS
//!    name; an address literal names the socket the client really connected to), `localhost`
//!    and `*.localhost` (RFC 6761: always this machine), `--host` when it is a name, the host of
//!    `--public-url`, and `--allowed-hosts` (".example.com" allows the subdomains too, "*" any
//!    name). Ports are not compared: a port mapping (Docker `-p 8080:9324`, a load balancer) or a
//!    default port the client leaves out changes the port, and the port is not what a rebinding
//!    attack changes. No `Host` at all (HTTP/1.0) is no browser's request, so it passes.
//! 2. **Origin** (cross-site requests): a request with an `Origin` header must come from this
//!    server's own origin: the `Host` it was sent to (the scheme's default port made explicit on
//!    both sides) or the configured public URL. `Origin: null` (sandboxed frames, some redirects)
//!    is refused. `Sec-Fetch-Site: cross-site` or `same-site` (another origin of the same site,
//!    e.g. another local app on `localhost:3000`) is refused too, except a top-level navigation by
//!    GET (a link to the dashboard; its answer goes to the user's tab, not to the page).
//!    The AWS SDKs and CLIs send neither header, so they are unaffected; the dashboard's own
//!    requests are same-origin.
//! 3. **An unsigned GET never changes state** (an `<img src>` or a link could send it): a request
//!    by any method but POST without a presigned signature (`X-Amz-Signature` in the query) may
//!    only run read-only actions: those whose names in the operations tables start with `Get` or
//!    `List` (AWS's naming: [`read_only`]), and SNS's own links, `ConfirmSubscription` (which
//!    needs the subscription's secret token) and `Unsubscribe` (the subscription ARN's random id),
//!    which SNS hands to subscribers as GET URLs. Every `Action` in the query and body counts,
//!    and `X-Amz-Target` when present. The signature is verified by the authentication layer when
//!    keys are configured; with auth off its presence is all that is checked.
//! 4. A plain HTML form from another origin (urlencoded, `text/plain`, `multipart/form-data`)
//!    carries a foreign `Origin` (or `null`) in every current browser: rule 2 refuses it.

use sluice_protocol::sns::error::SnsError;
use sluice_protocol::sns::wire;
use sluice_protocol::sqs::action::OPERATIONS as SQS_OPERATIONS;
use sluice_protocol::{early_error, ApiError, Protocol, Request, Response, Route};

use crate::config::Config;

/// The names and origin this server answers to.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Exact host names (lowercase, no port, no trailing dot).
    names: Vec<String>,
    /// `.example.com` entries: the name and its subdomains.
    suffixes: Vec<String>,
    /// `*` among the allowed hosts: the Host check is off.
    any_host: bool,
    /// The configured public URL's origin, as [`normalize_origin`] writes it.
    public_origin: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` is not one of this server's names.
    Host(String),
    /// The `Origin` is another web origin (or `null`).
    Origin(String),
    /// `Sec-Fetch-Site` says the request comes from another origin.
    FetchSite(String),
    /// A state-changing action by an unsigned request other than POST.
    UnsignedGet { method: String, action: String },
}

impl Refusal {
    /// The error message, in the manner of AWS's "Access to the resource ... is denied.", saying
    /// why and what to change.
    pub fn message(&self) -> String {
        match self {
            Refusal::Host(host) => format!(
                "Access to the resource is denied: Host {host:?} is not a name of this server (DNS rebinding \
                 protection). Add it with --allowed-hosts or SLUICE_ALLOWED_HOSTS."
            ),
            Refusal::Origin(origin) => format!(
                "Access to the resource is denied: requests from the web origin {origin:?} are refused (cross-origin \
                 protection: a page served elsewhere may not drive this server)."
            ),
            Refusal::FetchSite(site) => format!(
                "Access to the resource is denied: browser requests from another origin are refused (Sec-Fetch-Site: \
                 {site})."
            ),
            Refusal::UnsignedGet { method, action } => format!(
                "Access to the resource is denied: {action} changes state and may not be sent by an unsigned {method}; \
                 send it by POST (as the AWS SDKs and CLI do) or as a presigned URL."
            ),
        }
    }
}

impl Guard {
    /// From the configuration: `--host`, `--public-url`, `--allowed-hosts`.
    pub fn new(config: &Config) -> Guard {
        let public_origin = config.public_url.as_deref().and_then(|u| normalize_origin(u.trim_end_matches('/')));
        let public_host = public_origin.as_deref().and_then(|o| o.split_once("://")).map(|(_, a)| a.to_string());
        let mut guard = Guard { public_origin, ..Guard::default() };
        let entries = std::iter::once(&config.host).chain(&config.allowed_hosts).chain(public_host.as_ref());
        for entry in entries {
            let entry = entry.trim().to_ascii_lowercase();
            if entry == "*" {
                guard.any_host = true;
            } else if let Some(domain) = entry.strip_prefix('.') {
                guard.suffixes.push(domain.trim_end_matches('.').to_string());
            } else if !entry.is_empty() {
                guard.names.push(split_host(&entry).0.trim_end_matches('.').to_string());
            }
        }
        guard
    }

    /// Every check of this module; `route` is the request's routing (its API and protocol).
    pub fn check(&self, req: &Request<'_>, route: &Route) -> Result<(), Refusal> {
        if let Some(host) = req.host {
            if !self.host_allowed(host) {
                return Err(Refusal::Host(host.to_string()));
            }
        }
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let navigation = matches!(req.method, "GET" | "HEAD") && header("sec-fetch-mode") == Some("navigate");
        if let Some(site) = header("sec-fetch-site") {
            let site = site.to_ascii_lowercase();
            if (site == "cross-site" || site == "same-site") && !navigation {
                return Err(Refusal::FetchSite(site));
            }
        }
        if let Some(origin) = req.headers.get("origin") {
            let origin = String::from_utf8_lossy(origin.as_bytes()).trim().to_string();
            if !self.same_origin(&origin, req.host, req.scheme) {
                return Err(Refusal::Origin(origin));
            }
        }
        if req.method != "POST" && !presigned(req.query) {
            for action in actions(req) {
                let sns_link =
                    matches!(route, Route::Sns(_)) && matches!(action.as_str(), "ConfirmSubscription" | "Unsubscribe");
                if !read_only(&action) && !sns_link {
                    return Err(Refusal::UnsignedGet { method: req.method.to_string(), action });
                }
            }
        }
        Ok(())
    }

    /// Rule 1: is `host` (a Host header: name or address, maybe a port) one of this server's?
    fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let (name, _port) = split_host(host);
        let name = name.trim_end_matches('.');
        name.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.iter().any(|n| n == name)
            || self
                .suffixes
                .iter()
                .any(|s| name == s || name.strip_suffix(s.as_str()).is_some_and(|p| p.ends_with('.')))
    }

    /// Rule 2: is `origin` this server's own origin, reached through `host` by `scheme`?
    fn same_origin(&self, origin: &str, host: Option<&str>, scheme: &str) -> bool {
        let Some(origin) = normalize_origin(origin) else { return false };
        if self.public_origin.as_deref() == Some(origin.as_str()) {
            return true;
        }
        // The origin the request was sent to, as a browser writes it: the listener's scheme and
        // the Host (a proxy that terminates TLS in front changes the scheme: configure
        // --public-url there, as for the queue URLs).
        host.and_then(|h| normalize_origin(&format!("{scheme}://{h}"))).is_some_and(|own| own == origin)
    }
}

/// Splits a Host value into its name (lowercase; an IPv6 address keeps its brackets) and port.
fn split_host(host: &str) -> (String, Option<u16>) {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        if let Some(end) = host.find(']') {
            let port = host[end + 1..].strip_prefix(':').and_then(|p| p.parse().ok());
            return (host[..=end].to_string(), port);
        }
    }
    match host.rsplit_once(':') {
        // One colon: name:port. More (a bare IPv6 address, not valid in Host): all name.
        Some((name, port)) if !name.contains(':') => (name.to_string(), port.parse().ok()),
        _ => (host, None),
    }
}

/// `scheme://host[:port]` in one spelling: lowercase, no trailing dot or slash, the scheme's
/// default port left out. None: not an http(s) origin.
fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let (name, port) = split_host(authority);
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return None;
    }
    Some(match port {
        Some(p) if p != default => format!("{scheme}://{name}:{p}"),
        _ => format!("{scheme}://{name}"),
    })
}

/// True when the query string carries a SigV4 presigned signature (verified, when keys are
/// configured, by the authentication layer).
fn presigned(query: Option<&str>) -> bool {
    query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "X-Amz-Signature"))
}

/// Every action a request names: its `X-Amz-Target` (JSON protocol), else every `Action`
/// parameter of the query string and body (whatever the content type: SNS reads body pairs of a
/// `text/plain` body too), so no spelling or position can slip one past.
fn actions(req: &Request<'_>) -> Vec<String> {
    if let Some(target) = req.target {
        return vec![target.strip_prefix("AmazonSQS.").unwrap_or(target).to_string()];
    }
    let query = form_urlencoded::parse(req.query.unwrap_or("").as_bytes());
    query.chain(form_urlencoded::parse(req.body)).filter(|(k, _)| k == "Action").map(|(_, v)| v.into_owned()).collect()
}

/// True for an operation that changes nothing, from the operations tables (SQS's `operations!`,
/// SNS's `sns_operations!`): AWS names its read-only operations `Get…` and `List…` (IAM's Read and
/// List access levels), and every other operation of both APIs changes state — ReceiveMessage
/// included, since it hides the messages it returns. An unknown name is not read-only.
pub fn read_only(action: &str) -> bool {
    let known = SQS_OPERATIONS.contains(&action)
        || sluice_sns::OPERATIONS.iter().any(|op| op.strip_prefix("SNS.") == Some(action));
    known && (action.starts_with("Get") || action.starts_with("List"))
}

/// The 403 answer to a refused request, in the format of the API and protocol it speaks (the
/// dashboard and other paths of sluice's own get the SQS Query protocol's, like an unknown path).
pub fn refuse(refusal: &Refusal, route: &Route) -> Response {
    let message = refusal.message();
    tracing::warn!(reason = ?refusal, "request refused");
    match route {
        Route::Sns(_) => {
            let request_id = uuid::Uuid::new_v4().to_string();
            wire::error_response(&SnsError::AuthorizationError(message), &request_id)
        }
        Route::Sqs(sqs) => early_error(sqs.protocol(), &ApiError::AccessDenied(message)),
        Route::Admin => early_error(Protocol::Query, &ApiError::AccessDenied(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(host: &str, public_url: Option<&str>, allowed: &[&str]) -> Guard {
        let args = crate::config::ServeArgs::default();
        let mut config = Config::load(&args).unwrap();
        config.host = host.into();
        config.public_url = public_url.map(str::to_string);
        config.allowed_hosts = allowed.iter().map(|s| s.to_string()).collect();
        Guard::new(&config)
    }

    struct Req {
        method: &'static str,
        query: Option<&'static str>,
        headers: hyper::HeaderMap,
        target: Option<&'static str>,
        host: Option<&'static str>,
        body: &'static [u8],
    }

    impl Req {
        fn new(method: &'static str, query: Option<&'static str>) -> Req {
            Req {
                method,
                query,
                headers: hyper::HeaderMap::new(),
                target: None,
                host: Some("127.0.0.1:9324"),
                body: b"",
            }
        }
        fn header(mut self, name: &'static str, value: &'static str) -> Req {
            self.headers.insert(name, hyper::header::HeaderValue::from_static(value));
            self
        }
        fn check(&self, guard: &Guard) -> Result<(), Refusal> {
            let req = Request {
                method: self.method,
                path: "/",
                query: self.query,
                headers: &self.headers,
                content_type: None,
                target: self.target,
                host: self.host,
                scheme: "http",
                body: self.body,
                identity: None,
                source_ip: None,
            };
            guard.check(&req, &sluice_protocol::route(&req))
        }
    }

    #[test]
    fn read_only_operations_come_from_the_tables() {
        let sqs: Vec<&str> = SQS_OPERATIONS.iter().copied().filter(|op| read_only(op)).collect();
        assert_eq!(
            sqs,
            [
                "GetQueueAttributes",
                "GetQueueUrl",
                "ListDeadLetterSourceQueues",
                "ListMessageMoveTasks",
                "ListQueueTags",
                "ListQueues"
            ]
        );
        for op in ["ListTopics", "ListSubscriptionsByTopic", "GetTopicAttributes", "GetSubscriptionAttributes"] {
            assert!(read_only(op), "{op}");
        }
        for op in ["ReceiveMessage", "DeleteQueue", "Publish", "Subscribe", "ListNothing", "deletequeue"] {
            assert!(!read_only(op), "{op}");
        }
    }

    #[test]
    fn hosts() {
        let g = guard("127.0.0.1", Some("https://sqs.example.com:8443"), &["sluice", ".corp.example"]);
        for ok in [
            "127.0.0.1:9324",
            "127.0.0.1",
            "localhost:9324",
            "LOCALHOST.",
            "app.localhost",
            "[::1]:9324",
            "[::1]",
            "10.1.2.3:80",
            "sqs.example.com",
            "sqs.example.com:443",
            "sluice:9324",
            "corp.example",
            "a.b.corp.example:1",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in ["rebind.attacker.example", "rebind.attacker.example:9324", "evilcorp.example", "localhost.evil.com"]
        {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        assert!(guard("0.0.0.0", None, &["*"]).host_allowed("anything.example"));
        assert!(guard("sluice.internal", None, &[]).host_allowed("sluice.internal:9324"));
    }

    #[test]
    fn origins() {
        let g = guard("127.0.0.1", Some("https://sqs.example.com/"), &[]);
        let host = Some("localhost:9324");
        assert!(g.same_origin("http://localhost:9324", host, "http"));
        assert!(g.same_origin("HTTP://LocalHost:9324", host, "http"));
        assert!(g.same_origin("https://sqs.example.com", host, "http"), "the public URL");
        assert!(g.same_origin("https://sqs.example.com:443", host, "http"));
        assert!(g.same_origin("http://x.test", Some("x.test:80"), "http"), "default port either way");
        assert!(g.same_origin("https://[::1]:9324", Some("[::1]:9324"), "https"));
        for bad in ["http://evil.example", "null", "http://localhost:3000", "https://localhost:9324", "file://", ""] {
            assert!(!g.same_origin(bad, host, "http"), "{bad}");
        }
        assert!(!g.same_origin("http://localhost:9324", None, "http"));
    }

    #[test]
    fn requests() {
        let g = guard("127.0.0.1", None, &[]);
        let delete = Some("Action=DeleteQueue&QueueUrl=http%3A%2F%2F127.0.0.1%3A9324%2F000000000000%2Fq");
        // Rule 3: unsigned GETs.
        let refused = Req::new("GET", delete).check(&g).unwrap_err();
        assert!(matches!(&refused, Refusal::UnsignedGet { action, .. } if action == "DeleteQueue"), "{refused:?}");
        assert!(Req::new("GET", Some("Action=ListQueues")).check(&g).is_ok());
        assert!(Req::new("HEAD", Some("Action=PurgeQueue&QueueUrl=x")).check(&g).is_err());
        assert!(
            Req::new("GET", Some("Action=ListQueues&Act%69on=PurgeQueue")).check(&g).is_err(),
            "every Action counts"
        );
        assert!(Req::new("GET", Some("Action=ReceiveMessage&QueueUrl=x")).check(&g).is_err());
        assert!(Req::new("POST", delete).check(&g).is_ok());
        let signed = Some("Action=DeleteQueue&QueueUrl=x&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc");
        assert!(Req::new("GET", signed).check(&g).is_ok(), "presigned");
        let mut json = Req::new("GET", None);
        json.target = Some("AmazonSQS.DeleteQueue");
        assert!(json.check(&g).is_err());
        let mut body = Req::new("GET", Some("Action=ListQueues"));
        body.body = b"Action=DeleteQueue&QueueUrl=x";
        assert!(body.check(&g).is_err(), "a body Action counts too");
        assert!(Req::new("GET", Some("Action=Subscribe&Version=2010-03-31&TopicArn=t&Protocol=http"))
            .check(&g)
            .is_err());
        assert!(Req::new("GET", Some("Action=ListTopics&Version=2010-03-31")).check(&g).is_ok());
        assert!(Req::new("GET", Some("Action=ConfirmSubscription&TopicArn=t&Token=x")).check(&g).is_ok(), "SNS link");
        assert!(Req::new("GET", Some("Action=Unsubscribe&SubscriptionArn=a")).check(&g).is_ok(), "SNS link");
        // Rule 2: origins and fetch metadata.
        let evil = Req::new("POST", Some("Action=PurgeQueue&QueueUrl=x")).header("origin", "http://evil.example");
        assert_eq!(evil.check(&g), Err(Refusal::Origin("http://evil.example".into())));
        assert!(Req::new("POST", None).header("origin", "null").check(&g).is_err());
        assert!(Req::new("POST", None).header("origin", "http://127.0.0.1:9324").check(&g).is_ok());
        assert!(Req::new("POST", None).header("sec-fetch-site", "cross-site").check(&g).is_err());
        assert!(Req::new("POST", None).header("sec-fetch-site", "same-site").check(&g).is_err());
        assert!(Req::new("POST", None).header("sec-fetch-site", "same-origin").check(&g).is_ok());
        assert!(Req::new("GET", Some("x=1")).header("sec-fetch-site", "none").check(&g).is_ok());
        let link = Req::new("GET", None).header("sec-fetch-site", "cross-site").header("sec-fetch-mode", "navigate");
        assert!(link.check(&g).is_ok(), "a link to the dashboard");
        let img = Req::new("GET", None).header("sec-fetch-site", "cross-site").header("sec-fetch-mode", "no-cors");
        assert!(img.check(&g).is_err());
        // Rule 1: Host.
        let mut rebind = Req::new("GET", None);
        rebind.host = Some("rebind.attacker.example:9324");
        assert_eq!(rebind.check(&g), Err(Refusal::Host("rebind.attacker.example:9324".into())));
        let mut http10 = Req::new("GET", None);
        http10.host = None;
        assert!(http10.check(&g).is_ok(), "no Host: no browser");
    }
}
