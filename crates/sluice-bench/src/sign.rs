//! SigV4 signing of the bench's requests, for servers that verify signatures (sluice with access
//! keys configured, AWS itself). Only what this client sends: `POST /`, AWS JSON 1.0, with
//! `content-type`, `host`, `x-amz-date` and `x-amz-target` signed and the payload's SHA-256 in the
//! canonical request. The signing key is derived once per connection and day (four HMACs), then
//! each request costs two SHA-256 passes (body, canonical request) and one HMAC.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// An access key and the region its requests are scoped to (service `sqs`).
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

/// Signs requests with one key; keeps the signing key of the current day.
pub struct Signer {
    creds: Credentials,
    /// `YYYYMMDD` and the MAC keyed with that day's signing key.
    day: Option<(String, HmacSha256)>,
}

/// The two headers a signed request adds.
pub struct Signature {
    /// `x-amz-date`: `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    pub authorization: String,
}

impl Signer {
    pub fn new(creds: Credentials) -> Signer {
        Signer { creds, day: None }
    }

    /// Signs `POST /` to `host` with `x-amz-target: target`, `content-type: content_type` and
    /// `body`, at `now`.
    pub fn sign(&mut self, host: &str, target: &str, content_type: &str, body: &[u8], now: SystemTime) -> Signature {
        let amz_date = amz_date(now);
        let date = &amz_date[..8];
        let scope = format!("{date}/{}/sqs/aws4_request", self.creds.region);

        // The canonical request, streamed into its hash.
        let mut canonical = Sha256::new();
        for part in [
            "POST\n/\n\ncontent-type:",
            content_type,
            "\nhost:",
            host,
            "\nx-amz-date:",
            &amz_date,
            "\nx-amz-target:",
            target,
            "\n\ncontent-type;host;x-amz-date;x-amz-target\n",
            &hex(&Sha256::digest(body)),
        ] {
            canonical.update(part.as_bytes());
        }

        if self.day.as_ref().is_none_or(|(d, _)| d != date) {
            self.day = Some((date.to_string(), self.signing_mac(date)));
        }
        let mut mac = self.day.as_ref().map(|(_, m)| m.clone()).expect("set above");
        for part in ["AWS4-HMAC-SHA256\n", &amz_date, "\n", &scope, "\n", &hex(&canonical.finalize())] {
            mac.update(part.as_bytes());
        }
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}",
            self.creds.access_key_id,
            hex(&mac.finalize().into_bytes())
        );
        Signature { amz_date, authorization }
    }

    /// The MAC keyed with the day's signing key: HMAC chain over date, region, service and
    /// terminator, keyed by `"AWS4" + secret`.
    fn signing_mac(&self, date: &str) -> HmacSha256 {
        let step = |key: &[u8], data: &str| -> Vec<u8> {
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(data.as_bytes());
            mac.finalize().into_bytes().to_vec()
        };
        let mut key = step(format!("AWS4{}", self.creds.secret_access_key).as_bytes(), date);
        for data in [self.creds.region.as_str(), "sqs", "aws4_request"] {
            key = step(&key, data);
        }
        HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length")
    }
}

/// `YYYYMMDDTHHMMSSZ` (UTC) of `t`.
fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};
    use sluice_protocol::auth::{self, AuthError, KeyRing, Secret, Service};

    use super::*;

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const HOST: &str = "127.0.0.1:9324";
    const JSON: &str = "application/x-amz-json-1.0";
    const TARGET: &str = "AmazonSQS.SendMessage";

    fn ring(region: &str) -> KeyRing {
        let creds = auth::Credentials {
            access_key_id: KEY.into(),
            secret_access_key: Secret::new(SECRET),
            account_id: "000000000000".into(),
            principal_arn: "arn:aws:iam::000000000000:root".into(),
            policy: None,
        };
        KeyRing::new(region, vec![creds]).unwrap()
    }

    fn signer() -> Signer {
        Signer::new(Credentials {
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
            region: "us-east-1".into(),
        })
    }

    /// The headers the client sends (client.rs), `body` as sent, checked by the server's verifier
    /// at `now`.
    fn verify(sig: &Signature, body: &[u8], ring: &KeyRing, now: SystemTime) -> Result<String, AuthError> {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static(HOST));
        headers.insert("x-amz-target", HeaderValue::from_static(TARGET));
        headers.insert("content-type", HeaderValue::from_static(JSON));
        headers.insert("x-amz-date", HeaderValue::from_str(&sig.amz_date).unwrap());
        headers.insert("authorization", HeaderValue::from_str(&sig.authorization).unwrap());
        let req = sluice_protocol::Request {
            method: "POST",
            path: "/",
            query: None,
            headers: &headers,
            content_type: Some(JSON),
            target: Some(TARGET),
            host: Some(HOST),
            scheme: "http",
            body,
            identity: None,
            source_ip: None,
        };
        auth::verify(&req, ring, Service::Sqs, now).map(|id| id.access_key_id().to_string())
    }

    #[test]
    fn signed_requests_verify_with_the_servers_verifier() {
        let ring = ring("us-east-1");
        let mut s = signer();
        let body = br#"{"QueueUrl":"http://127.0.0.1:9324/000000000000/q","MessageBody":"hello"}"#;
        let now = SystemTime::now();
        let sig = s.sign(HOST, TARGET, JSON, body, now);
        assert_eq!(verify(&sig, body, &ring, now).unwrap(), KEY);

        // Across midnight the cached signing key is replaced (2015-08-30 23:59:59, then the 31st).
        for t in [1_440_979_199, 1_440_979_200] {
            let t = UNIX_EPOCH + Duration::from_secs(t);
            let sig = s.sign(HOST, TARGET, JSON, body, t);
            assert_eq!(verify(&sig, body, &ring, t).unwrap(), KEY, "{}", sig.amz_date);
        }
    }

    #[test]
    fn a_changed_body_wrong_secret_or_wrong_region_does_not_verify() {
        let now = SystemTime::now();
        let body = b"{}";
        let sig = signer().sign(HOST, TARGET, JSON, body, now);
        assert!(matches!(verify(&sig, b"{ }", &ring("us-east-1"), now), Err(AuthError::Mismatch { .. })));
        assert!(matches!(verify(&sig, body, &ring("eu-west-1"), now), Err(AuthError::Invalid(_))));
        let mut wrong = signer();
        wrong.creds.secret_access_key.push('x');
        let sig = wrong.sign(HOST, TARGET, JSON, body, now);
        assert!(matches!(verify(&sig, body, &ring("us-east-1"), now), Err(AuthError::Mismatch { .. })));
    }

    #[test]
    fn amz_date_is_utc_basic_format() {
        assert_eq!(amz_date(UNIX_EPOCH + Duration::from_secs(1_440_938_160)), "20150830T123600Z");
        assert_eq!(amz_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "20000229T000000Z");
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
    }
}
