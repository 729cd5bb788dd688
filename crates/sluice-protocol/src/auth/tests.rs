//! The verifier's checks, one by one, on requests signed here with the module's own primitives
//! (AWS's published vectors, which pin those primitives, are in `tests/sigv4_vectors.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::sigv4::{self, Form, Signed};
use super::*;

const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z, the test suite's clock.
const T0: u64 = 1_440_938_160;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn ring() -> KeyRing {
    KeyRing::new(
        "us-east-1",
        vec![Credentials {
            access_key_id: KEY.into(),
            secret_access_key: Secret::new(SECRET),
            account_id: "111122223333".into(),
            principal_arn: "arn:aws:iam::111122223333:user/alice".into(),
            policy: Some("{}".into()),
        }],
    )
    .unwrap()
}

/// A request under construction: what `sign` needs and what `Request` borrows.
struct Req {
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
    scheme: &'static str,
}

impl Req {
    fn json(target: &str, body: &str) -> Req {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("localhost:9324"));
        headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
        headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        Req { method: "POST", path: "/".into(), query: None, headers, body: body.as_bytes().to_vec(), scheme: "http" }
    }

    fn request(&self) -> Request<'_> {
        Request {
            method: self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            content_type: None,
            target: None,
            host: None,
            scheme: self.scheme,
            body: &self.body,
            identity: None,
            source_ip: None,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Req {
        self.headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        self
    }

    /// Signs with the header form: every header present is signed (as botocore does).
    fn sign(self, key: &str, secret: &str, time: u64, region: &str, service: &str) -> Req {
        self.sign_headers(key, secret, time, region, service, None)
    }

    fn sign_headers(
        mut self,
        key: &str,
        secret: &str,
        time: u64,
        region: &str,
        service: &str,
        only: Option<&str>,
    ) -> Req {
        let amz_date = sigv4::format_basic(time as i64);
        self.headers.insert("x-amz-date", HeaderValue::from_str(&amz_date).unwrap());
        let mut names: Vec<String> = self.headers.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        let signed_headers = only.map(str::to_string).unwrap_or_else(|| names.join(";"));
        let date = &amz_date[..8];
        let scope = format!("{date}/{region}/{service}/aws4_request");
        let signed = Signed {
            form: Form::Header,
            algorithm: sigv4::ALGORITHM.into(),
            credential: format!("{key}/{scope}").into(),
            signed_headers: signed_headers.clone().into(),
            signature: "".into(),
            amz_date: amz_date.clone().into(),
            expires: None,
            security_token: false,
        };
        let signature = {
            let req = self.request();
            // A client signs whatever hash it declares, right or wrong.
            let payload = sigv4::payload_hash(&req)
                .unwrap_or_else(|_| req.headers["x-amz-content-sha256"].to_str().unwrap().to_string().into());
            let mut canonical = Vec::new();
            sigv4::canonical_request(&mut canonical, &req, &signed, &payload);
            let hash = sigv4::hex32(&Sha256::digest(&canonical));
            let mut mac = sigv4::signing_mac(secret, date, region, service);
            sigv4::string_to_sign(&mut mac, &amz_date, &scope, &hash);
            sigv4::hex(&hmac::Mac::finalize(mac).into_bytes())
        };
        let auth =
            format!("AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}");
        self.headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        self
    }

    /// Presigns a GET: the query gets the X-Amz-* parameters and the signature.
    fn presign(mut self, time: u64, expires: Option<u64>, secret: &str) -> Req {
        let amz_date = sigv4::format_basic(time as i64);
        let scope = format!("{}/us-east-1/sqs/aws4_request", &amz_date[..8]);
        let mut query = self.query.clone().unwrap_or_default();
        let credential = format!("{KEY}/{scope}").replace('/', "%2F");
        query.push_str(&format!(
            "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={amz_date}&X-Amz-SignedHeaders=host"
        ));
        if let Some(e) = expires {
            query.push_str(&format!("&X-Amz-Expires={e}"));
        }
        self.query = Some(query.trim_start_matches('&').to_string());
        let signed = Signed {
            form: Form::Query,
            algorithm: sigv4::ALGORITHM.into(),
            credential: "".into(),
            signed_headers: "host".into(),
            signature: "".into(),
            amz_date: amz_date.clone().into(),
            expires: None,
            security_token: false,
        };
        let signature = {
            let req = self.request();
            let payload = sigv4::payload_hash(&req).unwrap();
            let mut canonical = Vec::new();
            sigv4::canonical_request(&mut canonical, &req, &signed, &payload);
            let hash = sigv4::hex32(&Sha256::digest(&canonical));
            let mut mac = sigv4::signing_mac(secret, &amz_date[..8], "us-east-1", "sqs");
            sigv4::string_to_sign(&mut mac, &amz_date, &scope, &hash);
            sigv4::hex(&hmac::Mac::finalize(mac).into_bytes())
        };
        let q = self.query.take().unwrap();
        self.query = Some(format!("{q}&X-Amz-Signature={signature}"));
        self
    }
}

fn check(req: &Req, now: u64) -> Result<Identity, AuthError> {
    verify(&req.request(), &ring(), Service::Sqs, at(now))
}

fn signed_json(time: u64) -> Req {
    Req::json("AmazonSQS.ListQueues", "{}").sign(KEY, SECRET, time, "us-east-1", "sqs")
}

#[test]
fn a_correct_signature_gives_the_identity() {
    let id = check(&signed_json(T0), T0).unwrap();
    assert_eq!(id.access_key_id(), KEY);
    assert_eq!(id.account_id(), "111122223333");
    assert_eq!(id.principal_arn(), "arn:aws:iam::111122223333:user/alice");
    assert_eq!(id.policy(), Some("{}"));
}

#[test]
fn no_authorization_is_missing_token() {
    let req = Req::json("AmazonSQS.ListQueues", "{}");
    assert_eq!(check(&req, T0).unwrap_err(), AuthError::MissingToken);
    // SigV2 and other schemes count as no token (dynalite: "AWS4-" prefix).
    let v2 = Req::json("AmazonSQS.ListQueues", "{}").header("authorization", "AWS AKID:c2ln");
    assert_eq!(check(&v2, T0).unwrap_err(), AuthError::MissingToken);
    assert_eq!(AuthError::MissingToken.to_string(), "Request is missing Authentication Token");
}

#[test]
fn missing_parameters_are_incomplete_and_listed() {
    let req = Req::json("AmazonSQS.ListQueues", "{}").header("authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e");
    let AuthError::Incomplete(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(
        m,
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization=AWS4-HMAC-SHA256 Credential=a/b/c/d/e"
    );
    let mut presigned = Req::json("AmazonSQS.ListQueues", "{}");
    presigned.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z".into());
    let AuthError::Incomplete(m) = check(&presigned, T0).unwrap_err() else { panic!() };
    assert_eq!(
        m,
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include \
         'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the \
         query-string parameters."
    );
}

#[test]
fn a_malformed_date_is_incomplete() {
    let mut req = signed_json(T0);
    req.headers.insert("x-amz-date", HeaderValue::from_static("201"));
    let AuthError::Incomplete(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(m, "Date must be in ISO-8601 'basic format'. Got '201'. See http://en.wikipedia.org/wiki/ISO_8601");
}

#[test]
fn skew_of_15_minutes_either_way_is_accepted_one_second_more_is_not() {
    let req = signed_json(T0);
    assert!(check(&req, T0 + 900).is_ok());
    assert!(check(&req, T0 - 900).is_ok());
    let AuthError::Invalid(m) = check(&req, T0 + 901).unwrap_err() else { panic!() };
    assert_eq!(
        m,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)"
    );
    let AuthError::Invalid(m) = check(&req, T0 - 901).unwrap_err() else { panic!() };
    assert_eq!(
        m,
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T122059Z + 15 min.)"
    );
}

#[test]
fn unknown_key_and_wrong_secret() {
    let req = Req::json("AmazonSQS.ListQueues", "{}").sign("AKIDOTHER", SECRET, T0, "us-east-1", "sqs");
    assert_eq!(check(&req, T0).unwrap_err(), AuthError::UnknownKey);
    assert_eq!(AuthError::UnknownKey.to_string(), "The security token included in the request is invalid.");
    let req = Req::json("AmazonSQS.ListQueues", "{}").sign(KEY, "not the secret", T0, "us-east-1", "sqs");
    let err = check(&req, T0).unwrap_err();
    let AuthError::Mismatch { canonical, string_to_sign } = &err else { panic!("{err:?}") };
    assert!(
        canonical.starts_with("POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:localhost:9324\n"),
        "{canonical}"
    );
    assert!(string_to_sign.starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/sqs/aws4_request\n"));
    assert!(err
        .to_string()
        .starts_with("The request signature we calculated does not match the signature you provided."));
}

#[test]
fn a_changed_body_or_header_breaks_the_signature() {
    let mut req = signed_json(T0);
    req.body = b"{\"QueueNamePrefix\":\"x\"}".to_vec();
    assert!(matches!(check(&req, T0), Err(AuthError::Mismatch { .. })));
    let mut req = signed_json(T0);
    req.headers.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.DeleteQueue"));
    assert!(matches!(check(&req, T0), Err(AuthError::Mismatch { .. })));
    let mut req = signed_json(T0);
    req.path = "/000000000000/q".into();
    assert!(matches!(check(&req, T0), Err(AuthError::Mismatch { .. })));
    // A garbage signature is a mismatch, not a panic.
    let mut req = signed_json(T0);
    let auth = req.headers["authorization"].to_str().unwrap().to_string();
    let garbage = format!("{}Signature=zz", &auth[..auth.find("Signature=").unwrap()]);
    req.headers.insert("authorization", HeaderValue::from_str(&garbage).unwrap());
    assert!(matches!(check(&req, T0), Err(AuthError::Mismatch { .. })));
}

#[test]
fn the_content_hash_header_must_match_the_body() {
    let body = "{}";
    let good = sigv4::hex(&Sha256::digest(body.as_bytes()));
    let req = Req::json("AmazonSQS.ListQueues", body).header("x-amz-content-sha256", &good).sign(
        KEY,
        SECRET,
        T0,
        "us-east-1",
        "sqs",
    );
    assert!(check(&req, T0).is_ok());
    let bad = sigv4::hex(&Sha256::digest(b"other"));
    let req = Req::json("AmazonSQS.ListQueues", body).header("x-amz-content-sha256", &bad);
    let req = req.sign(KEY, SECRET, T0, "us-east-1", "sqs");
    let AuthError::Invalid(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert!(m.contains("'x-amz-content-sha256'"), "{m}");
    // UNSIGNED-PAYLOAD over plain HTTP would let the body be swapped: refused; over HTTPS, taken.
    let req = Req::json("AmazonSQS.ListQueues", body).header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    let req = req.sign(KEY, SECRET, T0, "us-east-1", "sqs");
    assert!(matches!(check(&req, T0), Err(AuthError::Invalid(_))));
    let mut req = Req::json("AmazonSQS.ListQueues", body).header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    req.scheme = "https";
    let req = req.sign(KEY, SECRET, T0, "us-east-1", "sqs");
    assert!(check(&req, T0).is_ok());
}

#[test]
fn scope_is_checked_region_service_and_date() {
    let req = Req::json("AmazonSQS.ListQueues", "{}").sign(KEY, SECRET, T0, "eu-west-1", "sns");
    let AuthError::Invalid(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(
        m,
        "Credential should be scoped to a valid region, not 'eu-west-1'. Credential should be scoped to correct service: 'sqs'."
    );
    // The same request is fine for SNS in the right region.
    let req = Req::json("AmazonSQS.ListQueues", "{}").sign(KEY, SECRET, T0, "us-east-1", "sns");
    assert!(verify(&req.request(), &ring(), Service::Sns, at(T0)).is_ok());
    assert!(verify(&req.request(), &ring(), Service::Sqs, at(T0)).is_err());
    // A credential dated another day than X-Amz-Date.
    let mut req = signed_json(T0);
    let auth = req.headers["authorization"].to_str().unwrap().replace("/20150830/", "/20150829/");
    req.headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    let AuthError::Invalid(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(
        m,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150829' != '20150830', from '20150830T123600Z'."
    );
}

#[test]
fn host_and_every_x_amz_header_must_be_signed() {
    let req = Req::json("AmazonSQS.ListQueues", "{}").sign_headers(
        KEY,
        SECRET,
        T0,
        "us-east-1",
        "sqs",
        Some("x-amz-date;x-amz-target"),
    );
    let AuthError::Invalid(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(m, "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    let req = Req::json("AmazonSQS.ListQueues", "{}").sign_headers(
        KEY,
        SECRET,
        T0,
        "us-east-1",
        "sqs",
        Some("host;x-amz-date"),
    );
    let AuthError::Invalid(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(m, "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization.");
    // Headers other than x-amz-* may stay unsigned (User-Agent, Content-Type…).
    let req = Req::json("AmazonSQS.ListQueues", "{}").sign_headers(
        KEY,
        SECRET,
        T0,
        "us-east-1",
        "sqs",
        Some("host;x-amz-date;x-amz-target"),
    );
    assert!(check(&req, T0).is_ok());
}

#[test]
fn the_algorithm_and_the_credential_shape() {
    let mut req = signed_json(T0);
    let auth = req.headers["authorization"].to_str().unwrap().replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    req.headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    let AuthError::Incomplete(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(m, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ");
    let mut req = signed_json(T0);
    let auth = req.headers["authorization"].to_str().unwrap().replace("/us-east-1/sqs/", "/us-east-1/");
    req.headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    assert!(
        matches!(check(&req, T0), Err(AuthError::Incomplete(m)) if m.starts_with("Credential must have exactly 5"))
    );
}

#[test]
fn a_session_token_is_refused() {
    let req = Req::json("AmazonSQS.ListQueues", "{}").header("x-amz-security-token", "token").sign(
        KEY,
        SECRET,
        T0,
        "us-east-1",
        "sqs",
    );
    assert_eq!(check(&req, T0).unwrap_err(), AuthError::InvalidToken);
}

#[test]
fn both_forms_at_once_are_refused() {
    let mut req = signed_json(T0);
    req.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256".into());
    let AuthError::Invalid(m) = check(&req, T0).unwrap_err() else { panic!() };
    assert_eq!(m, "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.");
}

fn presigned_get(time: u64, expires: Option<u64>, secret: &str) -> Req {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("localhost:9324"));
    let req = Req {
        method: "GET",
        path: "/000000000000/orders".into(),
        query: Some("Action=SendMessage&MessageBody=hello%20world&Version=2012-11-05".into()),
        headers,
        body: Vec::new(),
        scheme: "http",
    };
    req.presign(time, expires, secret)
}

#[test]
fn presigned_urls_work_until_they_expire() {
    let req = presigned_get(T0, Some(60), SECRET);
    assert_eq!(check(&req, T0).unwrap().access_key_id(), KEY);
    assert!(check(&req, T0 + 60).is_ok());
    let AuthError::Invalid(m) = check(&req, T0 + 61).unwrap_err() else { panic!() };
    assert_eq!(
        m,
        "Request has expired: signed at 20150830T123600Z for 60 seconds, it ended at 20150830T123700Z; it is now 20150830T123701Z."
    );
    // Not usable before its date (beyond the skew).
    assert!(matches!(check(&req, T0 - 901), Err(AuthError::Invalid(m)) if m.starts_with("Signature not yet current")));
    // Without X-Amz-Expires: the 15-minute window.
    let req = presigned_get(T0, None, SECRET);
    assert!(check(&req, T0 + 900).is_ok());
    assert!(check(&req, T0 + 901).is_err());
    // Tampering with a parameter, or the wrong secret.
    let mut tampered = presigned_get(T0, Some(60), SECRET);
    tampered.query = Some(tampered.query.unwrap().replace("hello%20world", "goodbye"));
    assert!(matches!(check(&tampered, T0), Err(AuthError::Mismatch { .. })));
    let wrong = presigned_get(T0, Some(60), "wrong");
    assert!(matches!(check(&wrong, T0), Err(AuthError::Mismatch { .. })));
    // A week at most.
    let long = presigned_get(T0, Some(604_801), SECRET);
    assert!(matches!(check(&long, T0), Err(AuthError::Incomplete(_))));
}

#[test]
fn the_signing_key_cache_is_per_key_day_and_service_and_bounded() {
    let keys = ring();
    let ok = |req: &Req, service, now| verify(&req.request(), &keys, service, at(now)).unwrap();
    assert_eq!(keys.cached_signing_keys(), 0);
    ok(&signed_json(T0), Service::Sqs, T0);
    ok(&signed_json(T0 + 60), Service::Sqs, T0 + 60);
    assert_eq!(keys.cached_signing_keys(), 1, "same key, day and service: one entry");
    let sns = Req::json("x", "{}").sign(KEY, SECRET, T0, "us-east-1", "sns");
    ok(&sns, Service::Sns, T0);
    assert_eq!(keys.cached_signing_keys(), 2);
    for day in 1..=40 {
        let t = T0 + day * 86_400;
        ok(&signed_json(t), Service::Sqs, t);
    }
    assert_eq!(keys.cached_signing_keys(), CACHE_SLOTS, "bounded");
    // A cached key still verifies, and a wrong secret still fails with a warm cache.
    ok(&signed_json(T0 + 40 * 86_400), Service::Sqs, T0 + 40 * 86_400);
    let wrong = Req::json("AmazonSQS.ListQueues", "{}").sign(KEY, "wrong", T0 + 40 * 86_400, "us-east-1", "sqs");
    assert!(verify(&wrong.request(), &keys, Service::Sqs, at(T0 + 40 * 86_400)).is_err());
}

#[test]
fn the_date_header_stands_in_for_x_amz_date() {
    // Sign with X-Amz-Date, then swap it for the same time as an HTTP Date header.
    let mut req = Req::json("AmazonSQS.ListQueues", "{}");
    req.headers.insert("date", HeaderValue::from_static("Sun, 30 Aug 2015 12:36:00 GMT"));
    let mut req = req.sign_headers(KEY, SECRET, T0, "us-east-1", "sqs", Some("date;host;x-amz-target"));
    req.headers.remove("x-amz-date");
    assert!(check(&req, T0).is_ok());
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let c = Credentials {
        access_key_id: KEY.into(),
        secret_access_key: Secret::new(SECRET),
        account_id: "1".into(),
        principal_arn: "arn".into(),
        policy: None,
    };
    assert!(!format!("{c:?}").contains(SECRET));
    assert!(!format!("{:?}", ring()).contains(SECRET));
    assert!(format!("{:?}", ring()).contains(KEY));
}

#[test]
fn duplicate_and_empty_keys_are_refused() {
    let c = || Credentials {
        access_key_id: KEY.into(),
        secret_access_key: Secret::new(SECRET),
        account_id: "1".into(),
        principal_arn: "arn".into(),
        policy: None,
    };
    assert!(KeyRing::new("us-east-1", vec![c(), c()]).is_err());
    let mut empty = c();
    empty.secret_access_key = Secret::new("");
    assert!(KeyRing::new("us-east-1", vec![empty]).is_err());
}

#[test]
fn check_secret_accepts_only_the_exact_secret_of_the_key() {
    let ring = ring();
    let who = ring.check_secret(KEY, SECRET).expect("right secret");
    assert_eq!(who.account_id(), "111122223333");
    assert_eq!(who.principal_arn(), "arn:aws:iam::111122223333:user/alice");
    assert!(ring.check_secret(KEY, &SECRET[..SECRET.len() - 1]).is_none(), "a prefix");
    assert!(ring.check_secret(KEY, &format!("{SECRET}x")).is_none(), "longer");
    assert!(ring.check_secret(KEY, "").is_none());
    assert!(ring.check_secret("AKIDUNKNOWN", SECRET).is_none(), "another key id");
}
