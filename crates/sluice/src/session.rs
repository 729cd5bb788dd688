//! The dashboard's login sessions (when access keys are configured): `POST /ui/login` with an
//! access key id and its secret opens one; its cookie then authenticates the dashboard's calls
//! (`/api/…` and the SQS API), and `POST /ui/logout` ends it.
//!
//! - The cookie is `sluice_session=<id>.<mac>`: 32 random bytes and their HMAC-SHA256 under a key
//!   drawn from the OS at start, both base64url. `HttpOnly` (no script reads it), `SameSite=Strict`
//!   (no other site's page sends it), `Path=/`, `Max-Age` of [`SESSION_TTL`], and `Secure` when
//!   the dashboard is reached over HTTPS. The MAC is checked (constant time) before the id is
//!   looked up, so a forged cookie costs one HMAC and never touches the table.
//! - The table (id → identity, CSRF token, expiry) is in memory: sessions end at restart (the
//!   user logs in again), and logout ends one for good, which a self-contained signed cookie
//!   could not. It is bounded ([`MAX_SESSIONS`]; expired ones are dropped first, then the oldest).
//! - CSRF: each session has a random token the page gets from the login answer or from
//!   `GET /ui/session` (same-origin only: the guard refuses foreign origins, and the cookie is
//!   `SameSite=Strict`); every cookie-authenticated request by a method other than GET/HEAD must
//!   send it in [`CSRF_HEADER`]. See [`crate::auth::authenticate`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_protocol::auth::Identity;

/// The cookie's name.
pub const COOKIE: &str = "sluice_session";
/// The header the dashboard sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-sluice-csrf";
/// How long a session lasts from login (no sliding renewal: a stolen cookie dies on schedule).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many live sessions; a login beyond it drops the oldest.
pub const MAX_SESSIONS: usize = 10_000;

/// One logged-in dashboard.
#[derive(Debug, Clone)]
pub struct Session {
    pub identity: Identity,
    pub csrf_token: String,
    expires: Instant,
}

/// The signing key and the open sessions.
pub struct Sessions {
    key: [u8; 32],
    table: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS's random source failing is not recoverable for anything security-related.
    getrandom::fill(&mut bytes).expect("the OS random source");
    B64URL.encode(bytes)
}

impl Sessions {
    /// A fresh key from the OS's random source: cookies of an earlier run are not valid.
    pub fn new() -> Sessions {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source");
        Sessions { key, table: Mutex::new(HashMap::new()) }
    }

    fn mac(&self, id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac
    }

    /// Opens a session for `identity`; returns the cookie value and the session.
    pub fn open(&self, identity: Identity) -> (String, Session) {
        let id = random_token();
        let cookie = format!("{id}.{}", B64URL.encode(self.mac(&id).finalize().into_bytes()));
        let session = Session { identity, csrf_token: random_token(), expires: Instant::now() + SESSION_TTL };
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_SESSIONS {
            let now = Instant::now();
            table.retain(|_, s| s.expires > now);
            while table.len() >= MAX_SESSIONS {
                let oldest = table.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => table.remove(&k),
                    None => break,
                };
            }
        }
        table.insert(id, session.clone());
        (cookie, session)
    }

    /// The session id in a cookie value whose MAC is right.
    fn verified_id<'a>(&self, value: &'a str) -> Option<&'a str> {
        let (id, mac) = value.split_once('.')?;
        let mac = B64URL.decode(mac).ok()?;
        self.mac(id).verify_slice(&mac).ok()?;
        Some(id)
    }

    /// The live session a request's `Cookie` headers name, if any.
    pub fn lookup(&self, headers: &hyper::HeaderMap) -> Option<Session> {
        let id = self.verified_id(cookie_value(headers)?)?;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match table.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                table.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session a request's cookie names (nothing if none).
    pub fn close(&self, headers: &hyper::HeaderMap) {
        if let Some(id) = cookie_value(headers).and_then(|v| self.verified_id(v)) {
            self.table.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        }
    }

    /// How many sessions are in the table (tests).
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::new()
    }
}

/// The value of our cookie among the request's `Cookie` headers.
fn cookie_value(headers: &hyper::HeaderMap) -> Option<&str> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value that stores `value`; `secure`: the dashboard is reached over HTTPS.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_TTL.as_secs())
}

/// The `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Whether `given` is the session's CSRF token (constant time: both are MACed, then compared).
pub fn csrf_matches(sessions: &Sessions, session: &Session, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let expected = sessions.mac(&session.csrf_token).finalize().into_bytes();
    sessions.mac(given).verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::auth::{Credentials, KeyRing, Secret};

    fn identity() -> Identity {
        let ring = KeyRing::new(
            "us-east-1",
            vec![Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: Secret::new("s3cret"),
                account_id: "111122223333".into(),
                principal_arn: "arn:aws:iam::111122223333:root".into(),
                policy: None,
            }],
        )
        .unwrap();
        ring.check_secret("AKID", "s3cret").unwrap()
    }

    fn headers(cookie: &str) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        h.insert(hyper::header::COOKIE, format!("other=1; {COOKIE}={cookie}").parse().unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_at_logout() {
        let sessions = Sessions::new();
        let (cookie, session) = sessions.open(identity());
        let found = sessions.lookup(&headers(&cookie)).expect("the cookie names the session");
        assert_eq!(found.identity.account_id(), "111122223333");
        assert!(csrf_matches(&sessions, &found, Some(&session.csrf_token)));
        assert!(!csrf_matches(&sessions, &found, Some("nope")));
        assert!(!csrf_matches(&sessions, &found, None));
        sessions.close(&headers(&cookie));
        assert!(sessions.lookup(&headers(&cookie)).is_none(), "logged out");
    }

    #[test]
    fn forged_and_foreign_cookies_are_refused() {
        let sessions = Sessions::new();
        let (cookie, _) = sessions.open(identity());
        let (id, mac) = cookie.split_once('.').unwrap();
        assert!(sessions.lookup(&headers(&format!("{id}.{}", &mac[1..]))).is_none(), "bad MAC");
        assert!(sessions.lookup(&headers(id)).is_none(), "no MAC");
        // Another server's (or an earlier run's) key signs other MACs.
        let other = Sessions::new();
        assert!(other.lookup(&headers(&cookie)).is_none());
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie("v", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"), "{c}");
        assert!(!c.contains("Secure"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
    }
}
