//! AWS Signature Version 4 as AWS checks it for SQS and SNS: what a request says about its
//! signature (the `Authorization` header, or the presigned query parameters), the canonical
//! request, the string to sign and the signing key.
//!
//! The canonical request is AWS's for services other than S3: the path normalized (dot segments
//! and repeated slashes removed) and URI-encoded once more (the path on the wire is already encoded
//! once, so this is AWS's "encoded twice"); query parameters decoded, re-encoded and sorted; header
//! values trimmed, inner runs of spaces collapsed, repeated headers joined with `,`; the payload
//! hash is `x-amz-content-sha256` when sent, else the SHA-256 of the body.
//!
//! Canonical text is written into a [`Sink`]. On the hot path that sink is the SHA-256 hasher
//! itself: a request's canonical form is never built in memory (no allocation unless the request
//! has a query string to sort). Only a failed check writes it out as text, for the message AWS
//! sends with `SignatureDoesNotMatch`.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::AuthError;
use crate::Request;

/// The one algorithm SigV4 has.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// How far a request's time may be from the server's, either way (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest `X-Amz-Expires` AWS accepts: a week.
pub const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;

/// HMAC-SHA256, the MAC of every step.
pub type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of the empty body (a GET, a presigned URL), hex.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Where canonical text goes: a hasher (the hot path) or a buffer (error messages, tests).
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

impl Sink for HmacSha256 {
    fn put(&mut self, bytes: &[u8]) {
        Mac::update(self, bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// How the request carries its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    Header,
    /// A presigned URL: `X-Amz-Algorithm`, `X-Amz-Credential`, … in the query string.
    Query,
}

/// What a request says about its signature, before anything is checked.
#[derive(Debug)]
pub struct Signed<'a> {
    pub form: Form,
    pub algorithm: Cow<'a, str>,
    /// `AKID/YYYYMMDD/region/service/aws4_request`.
    pub credential: Cow<'a, str>,
    pub signed_headers: Cow<'a, str>,
    pub signature: Cow<'a, str>,
    /// `YYYYMMDDTHHMMSSZ` (from `X-Amz-Date`, or the HTTP `Date` header converted).
    pub amz_date: Cow<'a, str>,
    /// `X-Amz-Expires` of a presigned URL.
    pub expires: Option<Cow<'a, str>>,
    /// An `X-Amz-Security-Token` was sent (header or query).
    pub security_token: bool,
}

/// Reads the signature parameters from the `Authorization` header or the query string. Errors in
/// AWS's order and words: both forms at once, neither (`MissingAuthenticationToken`), parameters
/// missing (`IncompleteSignature`, listing each).
pub fn parse<'a>(req: &Request<'a>) -> Result<Signed<'a>, AuthError> {
    let header = req.headers.get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let presigned = req.query.is_some_and(|q| q.contains("X-Amz-Algorithm="));
    if header.is_some() && presigned {
        return Err(AuthError::Invalid(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into(),
        ));
    }
    match header {
        // SigV2 (`AWS AKID:sig`) and anything else that is not SigV4 counts as no token at all.
        Some(h) if h.trim_start().starts_with("AWS4-") => parse_header(req, h.trim()),
        Some(_) => Err(AuthError::MissingToken),
        None if presigned => parse_query(req),
        None => Err(AuthError::MissingToken),
    }
}

fn parse_header<'a>(req: &Request<'a>, auth: &'a str) -> Result<Signed<'a>, AuthError> {
    let (algorithm, rest) = auth.split_once(' ').unwrap_or((auth, ""));
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else { continue };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed_headers = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let amz_date = match req.headers.get("x-amz-date").and_then(|v| v.to_str().ok()) {
        Some(d) => Some(Cow::Borrowed(d)),
        None => req
            .headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(|d| Cow::Owned(http_date_to_basic(d).unwrap_or_else(|| d.to_string()))),
    };
    let mut missing = String::new();
    for (name, value) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if value.is_none_or(str::is_empty) {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    if amz_date.is_none() {
        missing.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!("{missing}Authorization={auth}")));
    }
    Ok(Signed {
        form: Form::Header,
        algorithm: Cow::Borrowed(algorithm),
        credential: Cow::Borrowed(credential.unwrap_or_default()),
        signed_headers: Cow::Borrowed(signed_headers.unwrap_or_default()),
        signature: Cow::Borrowed(signature.unwrap_or_default()),
        amz_date: amz_date.unwrap_or_default(),
        expires: None,
        security_token: req.headers.contains_key("x-amz-security-token"),
    })
}

fn parse_query<'a>(req: &Request<'a>) -> Result<Signed<'a>, AuthError> {
    let query = req.query.unwrap_or("");
    let (mut algorithm, mut credential, mut signature, mut signed_headers, mut date, mut expires) =
        (None, None, None, None, None, None);
    let mut security_token = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "X-Amz-Algorithm" => algorithm = Some(v),
            "X-Amz-Credential" => credential = Some(v),
            "X-Amz-Signature" => signature = Some(v),
            "X-Amz-SignedHeaders" => signed_headers = Some(v),
            "X-Amz-Date" => date = Some(v),
            "X-Amz-Expires" => expires = Some(v),
            "X-Amz-Security-Token" => security_token = true,
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, value) in [
        ("X-Amz-Algorithm", &algorithm),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Signature", &signature),
        ("X-Amz-SignedHeaders", &signed_headers),
        ("X-Amz-Date", &date),
    ] {
        if value.as_ref().is_none_or(|v| v.is_empty()) {
            missing.push_str(&format!("AWS query-string parameters must include '{name}'. "));
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!("{missing}Re-examine the query-string parameters.")));
    }
    Ok(Signed {
        form: Form::Query,
        algorithm: algorithm.unwrap_or_default(),
        credential: credential.unwrap_or_default(),
        signed_headers: signed_headers.unwrap_or_default(),
        signature: signature.unwrap_or_default(),
        amz_date: date.unwrap_or_default(),
        expires,
        security_token: security_token || req.headers.contains_key("x-amz-security-token"),
    })
}

/// The credential scope: `AKID/date/region/service/aws4_request`.
#[derive(Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    pub key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
    /// `date/region/service/aws4_request`, as it goes into the string to sign.
    pub scope: &'a str,
}

/// Splits a credential (trailing slashes ignored, as AWS does) into its five elements.
pub fn scope(credential: &str) -> Result<Scope<'_>, AuthError> {
    let trimmed = credential.trim_end_matches('/');
    let mut parts = trimmed.splitn(6, '/');
    let mut next = || parts.next();
    match (next(), next(), next(), next(), next(), next()) {
        (Some(key_id), Some(date), Some(region), Some(service), Some(terminator), None) => Ok(Scope {
            key_id,
            date,
            region,
            service,
            terminator,
            scope: &trimmed[key_id.len() + 1..],
        }),
        _ => Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        ))),
    }
}

/// The payload hash the canonical request ends with: `x-amz-content-sha256` when the client sent
/// one (then it must match the body: a signature over a hash says nothing about a body that does
/// not have it), else the body's SHA-256. The body is hashed once either way.
pub fn payload_hash<'a>(req: &Request<'a>) -> Result<Cow<'a, str>, AuthError> {
    let declared = req.headers.get("x-amz-content-sha256").map(|v| v.to_str().unwrap_or(""));
    if declared == Some("UNSIGNED-PAYLOAD") {
        // Without TLS an unsigned body could be swapped on the way; botocore itself signs the
        // payload whenever the connection is not HTTPS.
        if req.scheme == "https" {
            return Ok(Cow::Borrowed("UNSIGNED-PAYLOAD"));
        }
        return Err(AuthError::Invalid("UNSIGNED-PAYLOAD is accepted over HTTPS only; sign the payload.".into()));
    }
    let computed: Cow<'a, str> =
        if req.body.is_empty() { Cow::Borrowed(EMPTY_SHA256) } else { Cow::Owned(hex(&Sha256::digest(req.body))) };
    match declared {
        Some(d) if !d.eq_ignore_ascii_case(&computed) => Err(AuthError::Invalid(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        )),
        Some(d) => Ok(Cow::Borrowed(d)),
        None => Ok(computed),
    }
}

/// Writes the canonical request.
pub fn canonical_request(sink: &mut impl Sink, req: &Request<'_>, signed: &Signed<'_>, payload_hash: &str) {
    sink.put(req.method.as_bytes());
    sink.put(b"\n");
    canonical_path(sink, req.path);
    sink.put(b"\n");
    if let Some(q) = req.query.filter(|q| !q.is_empty()) {
        sink.put(canonical_query(q, signed.form == Form::Query).as_bytes());
    }
    sink.put(b"\n");
    for name in signed.signed_headers.split(';') {
        sink.put(name.as_bytes());
        sink.put(b":");
        for (i, value) in req.headers.get_all(name).iter().enumerate() {
            if i > 0 {
                sink.put(b",");
            }
            trimmed_value(sink, value.as_bytes());
        }
        sink.put(b"\n");
    }
    sink.put(b"\n");
    sink.put(signed.signed_headers.as_bytes());
    sink.put(b"\n");
    sink.put(payload_hash.as_bytes());
}

/// Writes the string to sign, given the hex SHA-256 of the canonical request.
pub fn string_to_sign(sink: &mut impl Sink, amz_date: &str, scope: &str, canonical_hash: &[u8]) {
    sink.put(ALGORITHM.as_bytes());
    sink.put(b"\n");
    sink.put(amz_date.as_bytes());
    sink.put(b"\n");
    sink.put(scope.as_bytes());
    sink.put(b"\n");
    sink.put(canonical_hash);
}

/// The signing key: HMAC chain over the date, region, service and terminator, keyed by
/// `"AWS4" + secret`. Returned as a ready MAC (its key schedule done), cloned per request.
pub fn signing_mac(secret: &str, date: &str, region: &str, service: &str) -> HmacSha256 {
    let step = |key: &[u8], data: &str| -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().into()
    };
    let k_date = step(format!("AWS4{secret}").as_bytes(), date);
    let k_region = step(&k_date, region);
    let k_service = step(&k_region, service);
    let k_signing = step(&k_service, TERMINATOR);
    HmacSha256::new_from_slice(&k_signing).expect("HMAC takes keys of any length")
}

/// The path as AWS canonicalizes it for non-S3 services: normalized (botocore's
/// `remove_dot_segments`, which also drops empty segments), then URI-encoded, `/` kept.
fn canonical_path(sink: &mut impl Sink, path: &str) {
    if path.is_empty() {
        sink.put(b"/");
        return;
    }
    let needs_normalizing = path.contains("//") || path.split('/').any(|s| s == "." || s == "..");
    if !needs_normalizing {
        uri_encode(sink, path.as_bytes(), true);
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len());
    if path.starts_with('/') {
        normalized.push('/');
    }
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    uri_encode(sink, normalized.as_bytes(), true);
}

/// The query string: every parameter decoded (form rules, as the Query protocol reads them) and
/// re-encoded with SigV4's encoding, sorted by name then value; a presigned URL's own
/// `X-Amz-Signature` left out.
fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| {
            let (mut ek, mut ev) = (Vec::new(), Vec::new());
            uri_encode(&mut ek, k.as_bytes(), false);
            uri_encode(&mut ev, v.as_bytes(), false);
            // Only ASCII goes out of uri_encode.
            (String::from_utf8_lossy(&ek).into_owned(), String::from_utf8_lossy(&ev).into_owned())
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// SigV4's URI encoding: unreserved characters (`A-Z a-z 0-9 - _ . ~`) as they are, `/` too when
/// asked, every other byte as `%XX` (upper-case hex).
fn uri_encode(sink: &mut impl Sink, bytes: &[u8], keep_slash: bool) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/');
        if !plain {
            sink.put(&bytes[start..i]);
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            sink.put(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            start = i + 1;
        }
    }
    sink.put(&bytes[start..]);
}

/// A header value trimmed, with inner runs of whitespace collapsed to one space.
fn trimmed_value(sink: &mut impl Sink, value: &[u8]) {
    let mut first = true;
    for word in value.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        if !first {
            sink.put(b" ");
        }
        first = false;
        sink.put(word);
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

/// A 32-byte digest as 64 lower-case hex digits, on the stack.
pub fn hex32(bytes: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().take(32).enumerate() {
        out[2 * i] = b"0123456789abcdef"[(b >> 4) as usize];
        out[2 * i + 1] = b"0123456789abcdef"[(b & 15) as usize];
    }
    out
}

/// Decodes a 64-digit hex signature; None if it is anything else.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = (digit(s[2 * i])? << 4) | digit(s[2 * i + 1])?;
    }
    Some(out)
}

/// Seconds since the epoch of an ISO-8601 basic-format UTC time (`20150830T123600Z`).
pub fn parse_basic(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Seconds since the epoch as ISO-8601 basic format (`20150830T123600Z`).
pub fn format_basic(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!("{y:04}{mo:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate) in basic format.
fn http_date_to_basic(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    Some(format_basic(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(bytes: &[u8], keep_slash: bool) -> String {
        let mut out = Vec::new();
        uri_encode(&mut out, bytes, keep_slash);
        String::from_utf8(out).unwrap()
    }

    fn path(p: &str) -> String {
        let mut out = Vec::new();
        canonical_path(&mut out, p);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths_are_normalized_and_encoded_again() {
        assert_eq!(path(""), "/");
        assert_eq!(path("/"), "/");
        assert_eq!(path("/000000000000/orders"), "/000000000000/orders");
        // Already encoded once on the wire: encoded a second time (non-S3 rule).
        assert_eq!(path("/a%20b"), "/a%2520b");
        assert_eq!(path("//example//"), "/example/");
        assert_eq!(path("/./"), "/");
        assert_eq!(path("/example/.."), "/");
        assert_eq!(path("/example1/example2/../.."), "/");
        assert_eq!(path("/a/./b/../c"), "/a/c");
    }

    #[test]
    fn query_is_decoded_encoded_and_sorted() {
        assert_eq!(canonical_query("Param2=value2&Param1=value1", false), "Param1=value1&Param2=value2");
        assert_eq!(canonical_query("b=2&a=2&a=1", false), "a=1&a=2&b=2");
        assert_eq!(
            canonical_query("QueueUrl=http%3a%2F%2Fx%2F0%2Fq&Action=SendMessage", false),
            "Action=SendMessage&QueueUrl=http%3A%2F%2Fx%2F0%2Fq"
        );
        assert_eq!(canonical_query("X-Amz-Signature=abc&A=1", true), "A=1");
        assert_eq!(canonical_query("M=a+b%7E", false), "M=a%20b~");
        assert_eq!(encoded("-_.~/ é".as_bytes(), false), "-_.~%2F%20%C3%A9");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        trimmed_value(&mut out, b"  value1   value2  \t x ");
        assert_eq!(out, b"value1 value2 x");
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_basic("20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_basic(t), "20150830T123600Z");
        assert_eq!(format_basic(951_782_400), "20000229T000000Z");
        assert_eq!(parse_basic("2015-08-30T12:36:00Z"), None);
        assert_eq!(parse_basic("201"), None);
        assert_eq!(parse_basic("20151330T123600Z"), None);
        assert_eq!(http_date_to_basic("Sun, 30 Aug 2015 12:36:00 GMT").as_deref(), Some("20150830T123600Z"));
        assert_eq!(http_date_to_basic("yesterday"), None);
    }

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..32).map(|i| i * 7).collect();
        let h = hex32(&bytes);
        assert_eq!(std::str::from_utf8(&h).unwrap(), hex(&bytes));
        assert_eq!(unhex32(std::str::from_utf8(&h).unwrap()).unwrap().to_vec(), bytes);
        assert_eq!(unhex32("zz"), None);
        assert_eq!(unhex32(&"g".repeat(64)), None);
    }

    #[test]
    fn scope_needs_five_elements() {
        let s = scope("AKID/20150830/us-east-1/sqs/aws4_request/").unwrap();
        assert_eq!(
            (s.key_id, s.date, s.region, s.service, s.terminator),
            ("AKID", "20150830", "us-east-1", "sqs", "aws4_request")
        );
        assert_eq!(s.scope, "20150830/us-east-1/sqs/aws4_request");
        let e = scope("a/b/c/d").unwrap_err();
        assert_eq!(e.to_string(), "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c/d'");
        assert!(scope("a/b/c/d/e/f").is_err());
    }
}
