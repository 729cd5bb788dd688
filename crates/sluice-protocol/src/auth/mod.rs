//! Who sent a request: AWS Signature Version 4 verification for SQS and SNS, in both forms (the
//! `Authorization` header and presigned query parameters) and both protocols.
//!
//! - [`KeyRing`]: the configured access keys ([`Credentials`]), the server's region, and a small
//!   bounded cache of signing keys per key / day / service (deriving one costs four HMACs).
//! - [`verify`]: checks a [`Request`] against the ring at an injected time and returns the
//!   verified [`Identity`] (account, principal ARN, identity policy, kept for policy enforcement).
//! - [`AuthError`]: the four failures AWS answers (`MissingAuthenticationToken`,
//!   `IncompleteSignature`, `InvalidClientTokenId`, `SignatureDoesNotMatch`); their codes and
//!   statuses are in the SQS and SNS error tables (`sqs/error.rs`, `sns/error.rs`).
//! - [`sigv4`]: parsing, the canonical request, the string to sign, the signing key.
//!
//! The order of checks and the messages follow AWS's service framework as recorded by dynalite
//! (mhart/dynalite, `index.js`, which mirrors DynamoDB's answers; SQS's JSON protocol shares that
//! framework): both forms at once; no token; missing parameters; the date's format and skew;
//! `host` signed; the algorithm; the credential's shape; its scope; the key; the signature.
//!
//! Secrets never reach a log: [`Secret`]'s `Debug` prints `***`, and [`Identity`] holds none.

pub mod access;
pub mod sigv4;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::Mac;
use sha2::{Digest, Sha256};

use self::sigv4::HmacSha256;
use crate::Request;

/// A secret access key. `Debug` never shows it; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// For flags and environment variables (`--secret-access-key`).
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One configured access key and whom it stands for.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// The 12-digit account the key belongs to.
    pub account_id: String,
    /// e.g. `arn:aws:iam::111122223333:user/alice` (default: the account's root).
    pub principal_arn: String,
    /// An IAM identity policy document (JSON), enforced on the key's requests (None: the
    /// account's full access, like the account root).
    pub policy: Option<String>,
}

/// The verified sender of a request. Cheap to clone (one `Arc`); holds no secret.
#[derive(Debug, Clone)]
pub struct Identity(Arc<Principal>);

#[derive(Debug)]
struct Principal {
    access_key_id: String,
    account_id: String,
    principal_arn: String,
    policy: Option<String>,
    /// `policy`, parsed once when the ring is built.
    parsed: Option<Arc<sluice_engine::iam::Policy>>,
}

impl Identity {
    pub fn access_key_id(&self) -> &str {
        &self.0.access_key_id
    }
    pub fn account_id(&self) -> &str {
        &self.0.account_id
    }
    pub fn principal_arn(&self) -> &str {
        &self.0.principal_arn
    }
    /// The identity policy document configured for the key, if any.
    pub fn policy(&self) -> Option<&str> {
        self.0.policy.as_deref()
    }
    /// The identity policy, parsed.
    pub fn parsed_policy(&self) -> Option<&Arc<sluice_engine::iam::Policy>> {
        self.0.parsed.as_ref()
    }
}

/// The service a credential must be scoped to, by route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sqs,
    Sns,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Sqs => "sqs",
            Service::Sns => "sns",
        }
    }
}

/// Why a request is not authenticated. Messages are AWS's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header and no presigned parameters (or a scheme other than SigV4).
    #[error("Request is missing Authentication Token")]
    MissingToken,
    /// Signature parameters missing or malformed.
    #[error("{0}")]
    Incomplete(String),
    /// The access key is not configured.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// A session token was sent: sluice has no temporary credentials, so none is valid.
    #[error("The security token included in the request is invalid")]
    InvalidToken,
    /// Signed wrongly in a way AWS names (skew, scope, unsigned `host`, …).
    #[error("{0}")]
    Invalid(String),
    /// The signature does not match. AWS shows the canonical request and string to sign it
    /// computed, so a client author can compare (neither holds a secret).
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
    )]
    Mismatch { canonical: String, string_to_sign: String },
}

/// How many signing keys the cache keeps. A key is good for a day, a region and a service, so a
/// server with a few keys needs a few entries; bounded so that requests naming many dates
/// cannot grow it.
const CACHE_SLOTS: usize = 32;

struct Key {
    secret: Secret,
    identity: Identity,
}

struct CachedMac {
    key: Arc<Key>,
    date: [u8; 8],
    service: &'static str,
    mac: HmacSha256,
}

/// The configured access keys, the region credentials must be scoped to, and the signing-key
/// cache.
pub struct KeyRing {
    region: String,
    keys: HashMap<String, Arc<Key>>,
    /// Ready MACs (signing key schedule done) per key / date / service; replaced round-robin
    /// when full. A read lock on the hot path; a write only on a new day or key.
    cache: RwLock<(Vec<CachedMac>, usize)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("KeyRing").field("region", &self.region).field("access_key_ids", &ids).finish()
    }
}

impl KeyRing {
    /// A ring for `region`. Two keys with one id, or an identity policy that does not parse,
    /// are refused.
    pub fn new(region: &str, credentials: Vec<Credentials>) -> Result<KeyRing, String> {
        let mut keys = HashMap::new();
        for c in credentials {
            if c.access_key_id.is_empty() || c.secret_access_key.expose().is_empty() {
                return Err("an access key needs a non-empty id and secret".into());
            }
            let parsed = match &c.policy {
                Some(text) => Some(Arc::new(
                    sluice_engine::iam::Policy::parse(text)
                        .map_err(|e| format!("access key {}: its identity policy: {e}", c.access_key_id))?,
                )),
                None => None,
            };
            let identity = Identity(Arc::new(Principal {
                access_key_id: c.access_key_id.clone(),
                account_id: c.account_id,
                principal_arn: c.principal_arn,
                policy: c.policy,
                parsed,
            }));
            let key = Arc::new(Key { secret: c.secret_access_key, identity });
            if keys.insert(c.access_key_id.clone(), key).is_some() {
                return Err(format!("access key {} is configured twice", c.access_key_id));
            }
        }
        Ok(KeyRing { region: region.to_string(), keys, cache: RwLock::new((Vec::new(), 0)) })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The identity of `access_key_id` if `secret` is its secret (the dashboard's login, which
    /// has no request to sign). The comparison takes the same time wherever the strings differ:
    /// both are MACed under a fixed label and the MACs compared with `verify_slice` (constant
    /// time), so neither the secret's length nor a common prefix shows in the timing.
    pub fn check_secret(&self, access_key_id: &str, secret: &str) -> Option<Identity> {
        let key = self.keys.get(access_key_id);
        let mac = |s: &str| {
            let mut m = <HmacSha256 as hmac::Mac>::new_from_slice(s.as_bytes()).expect("HMAC takes any key length");
            m.update(b"sluice dashboard login");
            m
        };
        // An unknown id costs the same work against a dummy secret.
        let expected = mac(key.map_or("\0", |k| k.secret.expose())).finalize().into_bytes();
        let matches = mac(secret).verify_slice(&expected).is_ok();
        key.filter(|_| matches).map(|k| k.identity.clone())
    }

    /// The MAC keyed with the signing key of `key` for `date` (YYYYMMDD) and `service`, from the
    /// cache or derived and cached.
    fn signing_mac(&self, key: &Arc<Key>, date: &str, service: &'static str) -> HmacSha256 {
        let date8: [u8; 8] = date.as_bytes().try_into().unwrap_or([0; 8]);
        let hit = |c: &CachedMac| Arc::ptr_eq(&c.key, key) && c.date == date8 && c.service == service;
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.0.iter().find(|c| hit(c)) {
                return c.mac.clone();
            }
        }
        let mac = sigv4::signing_mac(key.secret.expose(), date, &self.region, service);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        let (slots, next) = &mut *cache;
        if !slots.iter().any(hit) {
            let entry = CachedMac { key: key.clone(), date: date8, service, mac: mac.clone() };
            if slots.len() < CACHE_SLOTS {
                slots.push(entry);
            } else {
                slots[*next % CACHE_SLOTS] = entry;
                *next = next.wrapping_add(1);
            }
        }
        mac
    }

    /// How many signing keys are cached (tests).
    pub fn cached_signing_keys(&self) -> usize {
        self.cache.read().unwrap_or_else(|p| p.into_inner()).0.len()
    }
}

/// Verifies the SigV4 signature of `req` for `service` at time `now` (injected, so tests can
/// use AWS's test vectors' clock). Returns who signed it.
pub fn verify(req: &Request<'_>, keys: &KeyRing, service: Service, now: SystemTime) -> Result<Identity, AuthError> {
    verify_service(req, keys, service.as_str(), now)
}

/// [`verify`] for any service name (AWS's test vectors are scoped to `service`).
pub fn verify_service(
    req: &Request<'_>,
    keys: &KeyRing,
    service: &'static str,
    now: SystemTime,
) -> Result<Identity, AuthError> {
    let signed = sigv4::parse(req)?;
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let Some(time) = sigv4::parse_basic(&signed.amz_date) else {
        return Err(AuthError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            signed.amz_date
        )));
    };
    check_time(time, now, &signed)?;
    check_signed_headers(req, &signed)?;
    if signed.algorithm != sigv4::ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{}' (only AWS4-HMAC-SHA256 for now). ",
            signed.algorithm
        )));
    }
    let scope = sigv4::scope(&signed.credential)?;
    check_scope(&scope, &keys.region, service, &signed.amz_date)?;
    let key = keys.keys.get(scope.key_id).ok_or(AuthError::UnknownKey)?;
    let payload_hash = sigv4::payload_hash(req)?;

    let mut hasher = Sha256::new();
    sigv4::canonical_request(&mut hasher, req, &signed, &payload_hash);
    let canonical_hash = sigv4::hex32(&hasher.finalize());
    let mut mac = keys.signing_mac(key, scope.date, service);
    sigv4::string_to_sign(&mut mac, &signed.amz_date, scope.scope, &canonical_hash);
    // `verify_slice` compares in constant time.
    let matches = sigv4::unhex32(&signed.signature).is_some_and(|provided| mac.verify_slice(&provided).is_ok());
    if !matches {
        let mut canonical = Vec::new();
        sigv4::canonical_request(&mut canonical, req, &signed, &payload_hash);
        let mut string_to_sign = Vec::new();
        sigv4::string_to_sign(&mut string_to_sign, &signed.amz_date, scope.scope, &canonical_hash);
        return Err(AuthError::Mismatch {
            canonical: String::from_utf8_lossy(&canonical).into_owned(),
            string_to_sign: String::from_utf8_lossy(&string_to_sign).into_owned(),
        });
    }
    if signed.security_token {
        return Err(AuthError::InvalidToken);
    }
    Ok(key.identity.clone())
}

/// ±15 minutes of skew; a presigned URL also ends `X-Amz-Expires` seconds after its date.
fn check_time(time: i64, now: i64, signed: &sigv4::Signed<'_>) -> Result<(), AuthError> {
    let fmt = sigv4::format_basic;
    if let Some(expires) = &signed.expires {
        let secs = expires.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
            AuthError::Incomplete(format!("X-Amz-Expires must be a non-negative integer, not '{expires}'."))
        })?;
        if secs > sigv4::MAX_EXPIRES_SECS {
            return Err(AuthError::Incomplete(
                "X-Amz-Expires must be less than a week (in seconds) that is 604800".into(),
            ));
        }
        if now > time + secs {
            return Err(AuthError::Invalid(format!(
                "Request has expired: signed at {} for {secs} seconds, it ended at {}; it is now {}.",
                signed.amz_date,
                fmt(time + secs),
                fmt(now)
            )));
        }
    } else if time < now - sigv4::MAX_SKEW_SECS {
        return Err(AuthError::Invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            signed.amz_date,
            fmt(now - sigv4::MAX_SKEW_SECS),
            fmt(now)
        )));
    }
    if time > now + sigv4::MAX_SKEW_SECS {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            signed.amz_date,
            fmt(now + sigv4::MAX_SKEW_SECS),
            fmt(now)
        )));
    }
    Ok(())
}

/// `host` and every `x-amz-*` header the request carries must be signed: an unsigned one could
/// be changed on the way (`x-amz-target` picks the operation).
fn check_signed_headers(req: &Request<'_>, signed: &sigv4::Signed<'_>) -> Result<(), AuthError> {
    let is_signed = |name: &str| signed.signed_headers.split(';').any(|s| s.eq_ignore_ascii_case(name));
    if !is_signed("host") {
        return Err(AuthError::Invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.".into()));
    }
    for name in req.headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-") && !is_signed(name) {
            return Err(AuthError::Invalid(format!("'{name}' must be a 'SignedHeader' in the AWS Authorization.")));
        }
    }
    Ok(())
}

/// The credential's date, region, service and terminator must be this request's and server's.
fn check_scope(scope: &sigv4::Scope<'_>, region: &str, service: &str, amz_date: &str) -> Result<(), AuthError> {
    let mut problems = Vec::new();
    if scope.region != region {
        problems.push(format!("Credential should be scoped to a valid region, not '{}'.", scope.region));
    }
    if scope.service != service {
        problems.push(format!("Credential should be scoped to correct service: '{service}'."));
    }
    if scope.terminator != sigv4::TERMINATOR {
        problems.push(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            scope.terminator
        ));
    }
    let day = amz_date.get(..8).unwrap_or(amz_date);
    if scope.date != day {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{amz_date}'.",
            scope.date
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AuthError::Invalid(problems.join(" ")))
    }
}

/// The canonical request of a signed request as text: for tests that compare it with AWS's
/// vectors, and for debugging clients.
pub fn canonical_request_text(req: &Request<'_>) -> Result<String, AuthError> {
    let signed = sigv4::parse(req)?;
    let payload_hash = sigv4::payload_hash(req)?;
    let mut out = Vec::new();
    sigv4::canonical_request(&mut out, req, &signed, &payload_hash);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests;
