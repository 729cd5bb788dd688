//! Authentication at the server: which requests must be signed, the check itself (delegated to
//! [`sluice_protocol::auth::verify`]), and `sluice keygen`.
//!
//! With `--auth sigv4` (the default once access keys are configured) every SQS and SNS request
//! and every request to the dashboard's JSON API (`/api/…`, which can read message bodies) must
//! carry a valid SigV4 signature; the credential scope's service is `sqs` for SQS and the admin
//! API, `sns` for SNS. `/health`, `/ready`, `/metrics` (which has its own bearer token, see
//! [`crate::admin`]) and the dashboard's static files and login stay open (orchestrators and
//! scrapers do not sign; none of them shows message data). Failures are
//! answered in the protocol the request speaks, with AWS's codes (see `sqs/error.rs`,
//! `sns/error.rs` in sluice-protocol).
//!
//! The dashboard cannot sign: a browser holding a login session ([`crate::session`]) may instead
//! present its cookie, for `/api/…` and the SQS API (the dashboard's changes are SQS calls), and
//! by any method but GET/HEAD must also send the session's CSRF token. A request that carries a
//! signature is judged by it alone, cookie or not.
//!
//! Protected mode (no keys, no explicit `--auth`: loopback only) is decided in
//! [`crate::config::Config::protected_mode_refusal`] and enforced by `main` after binding.

use std::time::SystemTime;

use base64::Engine as _;
use sluice_protocol::auth::{verify, Identity, Service};
use sluice_protocol::sns::error::SnsError;
use sluice_protocol::{early_error, ApiError, Protocol, Request, Response, Route};

use crate::server::AppState;

/// Verifies `req` when the server requires signatures. `Ok(None)`: nothing to check (auth off,
/// or an open admin path); `Err`: the error response to send.
/// A refusal of a dashboard API call carries the dashboard's security headers, like its answers.
pub fn authenticate(state: &AppState, req: &Request<'_>, route: &Route) -> Result<Option<Identity>, Response> {
    check(state, req, route).map_err(|mut denied| {
        if matches!(route, Route::Admin) {
            denied.headers.extend(crate::admin::security_headers());
        }
        denied
    })
}

fn check(state: &AppState, req: &Request<'_>, route: &Route) -> Result<Option<Identity>, Response> {
    let Some(keys) = &state.auth else { return Ok(None) };
    let now = SystemTime::now();
    let (service, protocol) = match route {
        Route::Admin if req.path.starts_with("/api/") => (Service::Sqs, Some(Protocol::Json)),
        Route::Admin => return Ok(None),
        Route::Sqs(sqs) => (Service::Sqs, Some(sqs.protocol())),
        Route::Sns(_) => (Service::Sns, None),
    };
    if !signed(req) && matches!(route, Route::Admin | Route::Sqs(_)) {
        if let Some(session) = state.sessions.lookup(req.headers) {
            let safe = matches!(req.method, "GET" | "HEAD");
            let token = req.headers.get(crate::session::CSRF_HEADER).and_then(|v| v.to_str().ok());
            if safe || crate::session::csrf_matches(&state.sessions, &session, token) {
                return Ok(Some(session.identity));
            }
            tracing::warn!(path = req.path, method = req.method, "dashboard session request without its CSRF token");
            let message = format!(
                "Access to the resource is denied: a dashboard session's {} request must carry its CSRF token (header \
                 {}).",
                req.method,
                crate::session::CSRF_HEADER
            );
            let protocol = if let Route::Sqs(sqs) = route { sqs.protocol() } else { Protocol::Json };
            return Err(early_error(protocol, &ApiError::AccessDenied(message)));
        }
    }
    // Failures are logged by code only: a mismatch's message holds the canonical request.
    verify(req, keys, service, now).map(Some).map_err(|e| match protocol {
        Some(p) => {
            let e = ApiError::Auth(e);
            tracing::debug!(code = e.wire().query_code, path = req.path, "request not authenticated");
            early_error(p, &e)
        }
        None => {
            let e = SnsError::Auth(e);
            tracing::debug!(code = e.code(), path = req.path, "request not authenticated");
            sluice_protocol::sns::wire::error_response(&e, &uuid::Uuid::new_v4().to_string())
        }
    })
}

/// Whether the request carries a SigV4 signature in either form (valid or not).
fn signed(req: &Request<'_>) -> bool {
    req.headers.contains_key(hyper::header::AUTHORIZATION)
        || req.query.is_some_and(|q| q.contains("X-Amz-Signature=") || q.contains("X-Amz-Credential="))
}

/// A fresh random access key: a 20-character id (`SLK` and 17 base32 characters, so it cannot be
/// mistaken for an AWS key) and a 40-character secret (30 random bytes, base64), from the OS's
/// random source.
pub fn generate_key_pair() -> Result<(String, String), String> {
    let mut bytes = [0u8; 47];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random source: {e}"))?;
    const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = std::iter::once("SLK".to_string())
        .chain(bytes[..17].iter().map(|b| char::from(BASE32[(b & 31) as usize]).to_string()))
        .collect();
    let secret = base64::engine::general_purpose::STANDARD.encode(&bytes[17..47]);
    Ok((id, secret))
}

/// What `sluice keygen` prints: the pair as a config-file entry and as environment variables.
pub fn keygen_text(account_id: &str) -> Result<String, String> {
    let (id, secret) = generate_key_pair()?;
    Ok(format!(
        "# A fresh sluice access key. Keep the secret secret; sluice never logs it.\n\
         # In the config file:\n\
         [[access_keys]]\n\
         id = \"{id}\"\n\
         secret = \"{secret}\"\n\
         account_id = \"{account_id}\"\n\
         \n\
         # Or in the environment of `sluice serve` (the key's account is SLUICE_ACCOUNT_ID):\n\
         # SLUICE_ACCESS_KEY_ID={id}\n\
         # SLUICE_SECRET_ACCESS_KEY={secret}\n\
         \n\
         # Clients sign with it as with any AWS key:\n\
         # AWS_ACCESS_KEY_ID={id} AWS_SECRET_ACCESS_KEY={secret}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_fresh_and_well_formed() {
        let (id, secret) = generate_key_pair().unwrap();
        let (id2, secret2) = generate_key_pair().unwrap();
        assert_ne!((&id, &secret), (&id2, &secret2));
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("SLK") && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()), "{id}");
        assert_eq!(secret.len(), 40);
        let text = keygen_text("000000000000").unwrap();
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert!(parsed["access_keys"][0]["secret"].as_str().unwrap().len() == 40);
    }
}
