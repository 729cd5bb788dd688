//! Building an SDK client, and small helpers around queues and attributes.

use std::collections::HashMap;
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
/// For Amazon SQS itself, build the client the usual way (`aws-config` and a TLS connector) and
/// pass that `Client` to this crate instead.
pub fn plain_http_config(endpoint: &str) -> aws_sdk_sqs::config::Builder {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let key = env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into());
    let secret = env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into());
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint.trim_end_matches('/'))
        .region(Region::new(region))
        .credentials_provider(Credentials::new(key, secret, None, None, "sluice-client-static"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                // Long polls last up to 20 s.
                .operation_attempt_timeout(Duration::from_secs(40))
                .build(),
        )
}

/// An SDK client for a plain-HTTP endpoint; see [`plain_http_config`].
pub fn plain_http_client(endpoint: &str) -> Client {
    Client::from_conf(plain_http_config(endpoint).build())
}

/// The URL of queue `name` (GetQueueUrl).
pub async fn queue_url(client: &Client, name: &str) -> Result<String> {
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Error::sqs("GetQueueUrl", e))?;
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
        out.attributes()
            .and_then(|a| a.get(&n))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
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
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type is set")
}

/// The string value of message attribute `name`, if present.
pub fn get_string_attribute<'a>(attrs: Option<&'a HashMap<String, MessageAttributeValue>>, name: &str) -> Option<&'a str> {
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
