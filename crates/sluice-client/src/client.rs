//! Building an SDK client, and small helpers around queues and attributes.
//!
//! Two ways to a client: [`plain_http_client`] for a plain-HTTP endpoint (a local sluice: no TLS,
//! static credentials that default to `test`), and [`connect`] for everything else — Amazon SQS
//! or any HTTPS endpoint — with the standard AWS credential and region chain (`aws-config`) and
//! an HTTPS connector built on rustls with the ring provider.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use aws_sdk_sqs::Client;

use crate::error::{Error, Result};

/// A config builder for a plain-HTTP endpoint (e.g. a local sluice at `http://127.0.0.1:9324`):
/// hyper connector without TLS, static credentials from `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` (default `test`/`test`), region from `AWS_REGION` /
/// `AWS_DEFAULT_REGION` (default `us-east-1`), standard retries (3 attempts) and timeouts that
/// allow 20-second long polls. Adjust it before `build()` if needed.
///
/// For Amazon SQS itself or any HTTPS endpoint, see [`connect`].
pub fn plain_http_config(endpoint: &str) -> aws_sdk_sqs::config::Builder {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let key = env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into());
    let secret = env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into());
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
    aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint.trim_end_matches('/'))
        .region(Region::new(region))
        .credentials_provider(Credentials::new(key, secret, None, None, "sluice-client-static"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(retry_and_timeouts().0)
        .timeout_config(retry_and_timeouts().1)
}

/// An SDK client for a plain-HTTP endpoint; see [`plain_http_config`].
pub fn plain_http_client(endpoint: &str) -> Client {
    Client::from_conf(plain_http_config(endpoint).build())
}

/// Retries and timeouts shared by both ways to a client: standard retries (3 attempts), and an
/// attempt timeout that leaves room for 20-second long polls.
fn retry_and_timeouts() -> (RetryConfig, TimeoutConfig) {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(40))
        .build();
    (RetryConfig::standard().with_max_attempts(3), timeouts)
}

/// An HTTP client for the SDK that speaks HTTPS (and plain HTTP): rustls with the ring provider
/// (no OpenSSL, no aws-lc/cmake build). Server certificates are checked against the operating
/// system's roots (rustls-native-certs: the SDK's connector takes its trust store from there, the
/// same store the AWS CLI and curl use, so a corporate CA installed system-wide works too), plus
/// the PEM certificates of `ca_file` (a private CA, e.g. a sluice with its own certificate).
///
/// The CA file is checked here, certificate by certificate, because the SDK's trust store only
/// reads it at the first connection and panics on a bad one.
pub fn https_http_client(ca_file: Option<&Path>) -> Result<aws_sdk_sqs::config::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    use rustls::pki_types::{pem::PemObject, CertificateDer};

    // An OS without root certificates (a minimal container) would otherwise fail every handshake
    // with "unknown issuer" (and trip a debug assertion in the SDK): say so up front, or run on
    // the --ca-file alone.
    let native_roots = !rustls_native_certs::load_native_certs().certs.is_empty();
    let mut store = TrustStore::default().with_native_roots(native_roots);
    match ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| Error::Tls(format!("cannot read CA file {}: {e}", path.display())))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Tls(format!("CA file {}: no PEM certificate in it", path.display())));
            }
            let mut check = rustls::RootCertStore::empty();
            for cert in certs {
                check
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("CA file {}: unusable certificate: {e}", path.display())))?;
            }
            store = store.with_pem_certificate(pem);
        }
        None if !native_roots => {
            return Err(Error::Tls(
                "the operating system has no root certificates (install ca-certificates) and no CA file was given"
                    .into(),
            ))
        }
        None => {}
    }
    let context = TlsContext::builder().with_trust_store(store).build().map_err(|e| Error::Tls(e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}

/// The region of an Amazon SQS queue URL (`https://sqs.eu-west-1.amazonaws.com/…`, also the
/// legacy `https://eu-west-1.queue.amazonaws.com/…`); None for any other URL.
pub fn aws_queue_url_region(queue_url: &str) -> Option<&str> {
    let rest = queue_url.strip_prefix("https://").or_else(|| queue_url.strip_prefix("http://"))?;
    let host = rest.split(['/', ':']).next()?;
    let host = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let region = match host.strip_prefix("sqs.") {
        Some(r) => r,
        None => host.strip_suffix(".queue")?,
    };
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

/// An SDK client for any endpoint.
///
/// - `endpoint` `http://…` (a local sluice): [`plain_http_client`], as before; `ca_file` is not
///   needed and ignored.
/// - `endpoint` `https://…` or none (Amazon SQS's regional endpoint): [`https_http_client`]
///   with `ca_file`, and credentials and region from the standard AWS chain (`aws-config`:
///   environment, `~/.aws/config` and `credentials` profiles incl. `AWS_PROFILE`, SSO, web
///   identity tokens, ECS and EC2 instance metadata, `credential_process`). `region` wins over
///   the chain. With an explicit endpoint and no region anywhere, `us-east-1` is used (sluice
///   ignores it; SigV4 needs one); without an endpoint a region is required.
pub async fn connect(endpoint: Option<&str>, region: Option<&str>, ca_file: Option<&Path>) -> Result<Client> {
    if let Some(e) = endpoint.filter(|e| e.starts_with("http://")) {
        let mut conf = plain_http_config(e);
        if let Some(r) = region {
            conf = conf.region(Region::new(r.to_string()));
        }
        return Ok(Client::from_conf(conf.build()));
    }
    if let Some(e) = endpoint.filter(|e| !e.starts_with("https://")) {
        return Err(Error::Config(format!("endpoint {e:?} must start with http:// or https://")));
    }
    let (retry, timeouts) = retry_and_timeouts();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_http_client(ca_file)?)
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e.trim_end_matches('/'));
    }
    let sdk = loader.load().await;
    let mut conf = aws_sdk_sqs::config::Builder::from(&sdk);
    if sdk.region().is_none() {
        if endpoint.is_none() {
            return Err(Error::Config(
                "no AWS region: set AWS_REGION, a region in the AWS profile, or --region (or give --endpoint)".into(),
            ));
        }
        conf = conf.region(Region::new("us-east-1"));
    }
    Ok(Client::from_conf(conf.build()))
}

/// The URL of queue `name` (GetQueueUrl).
pub async fn queue_url(client: &Client, name: &str) -> Result<String> {
    let out = client.get_queue_url().queue_name(name).send().await.map_err(|e| Error::sqs("GetQueueUrl", e))?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("GetQueueUrl {name}: no QueueUrl in the answer")))
}

/// Creates queue `name` (idempotent when the attributes match) and returns its URL.
pub async fn create_queue(client: &Client, name: &str, attributes: &[(QueueAttributeName, &str)]) -> Result<String> {
    let mut req = client.create_queue().queue_name(name);
    for (k, v) in attributes {
        req = req.attributes(k.clone(), *v);
    }
    let out = req.send().await.map_err(|e| Error::sqs("CreateQueue", e))?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("CreateQueue {name}: no QueueUrl in the answer")))
}

/// Queue depth: `(visible, in flight, delayed)` from GetQueueAttributes (approximate numbers).
pub async fn queue_depth(client: &Client, url: &str) -> Result<(u64, u64, u64)> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| Error::sqs("GetQueueAttributes", e))?;
    let get = |n: QueueAttributeName| -> u64 {
        out.attributes().and_then(|a| a.get(&n)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    ))
}

/// The ARN of a queue (GetQueueAttributes QueueArn).
pub async fn queue_arn(client: &Client, url: &str) -> Result<String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| Error::sqs("GetQueueAttributes", e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| Error::Config(format!("no QueueArn for {url}")))
}

/// A `String` message attribute.
pub fn string_attribute(value: impl Into<String>) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

/// The string value of message attribute `name`, if present.
pub fn get_string_attribute<'a>(
    attrs: Option<&'a HashMap<String, MessageAttributeValue>>,
    name: &str,
) -> Option<&'a str> {
    attrs.and_then(|a| a.get(name)).and_then(|v| v.string_value())
}

/// Bytes a message attribute map adds to the request size, as SQS counts it (name + type + value).
pub fn attributes_size(attrs: &HashMap<String, MessageAttributeValue>) -> usize {
    attrs
        .iter()
        .map(|(k, v)| {
            k.len()
                + v.data_type().len()
                + v.string_value().map_or(0, str::len)
                + v.binary_value().map_or(0, |b| b.as_ref().len())
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_aws_queue_urls() {
        assert_eq!(aws_queue_url_region("https://sqs.eu-west-1.amazonaws.com/123456789012/ops"), Some("eu-west-1"));
        assert_eq!(aws_queue_url_region("https://eu-west-1.queue.amazonaws.com/123456789012/ops"), Some("eu-west-1"));
        assert_eq!(aws_queue_url_region("https://sqs.cn-north-1.amazonaws.com.cn/1/q"), Some("cn-north-1"));
        assert_eq!(aws_queue_url_region("https://localhost:9443/000000000000/ops"), None);
        assert_eq!(aws_queue_url_region("http://127.0.0.1:9324/000000000000/ops"), None);
        assert_eq!(aws_queue_url_region("https://evil.amazonaws.com.example.org/1/q"), None);
    }

    #[test]
    fn a_bad_ca_file_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("sluice-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(matches!(https_http_client(Some(&missing)), Err(Error::Tls(_))));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(https_http_client(Some(&empty)), Err(Error::Tls(_))));
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert!(matches!(https_http_client(Some(&garbage)), Err(Error::Tls(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn endpoints_must_be_http_or_https() {
        assert!(matches!(connect(Some("ftp://x"), None, None).await, Err(Error::Config(_))));
    }
}
