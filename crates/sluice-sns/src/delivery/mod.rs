//! What SNS delivers: the JSON envelope (Notification / SubscriptionConfirmation), SQS copies, and
//! HTTP(S) POSTs with retries, back-off and a dead-letter queue.
//!
//! - [`http`]: the pooled HTTP(S) client. HTTPS endpoints are spoken to over TLS (rustls with the
//!   ring provider); certificates must chain to Mozilla's roots (webpki-roots) or to the operator's
//!   extra CA bundle (`sns_ca_file`), so an endpoint with an untrusted certificate fails like one
//!   that is down: retried, then dead-lettered.
//! - [`endpoints`]: the addresses deliveries may reach ([`EndpointPolicy`]: no loopback, private
//!   or link-local address unless the operator allows it), checked at Subscribe and at connect.
//! - [`envelope`]: the JSON documents subscribers receive.
//! - [`sqs`]: copies into this server's SQS queues.
//! - [`retry`]: every HTTP delivery is a [`PendingDelivery`] record (see [`crate::records`]),
//!   written before the first attempt, rewritten lazily after each failed one (attempts made, time
//!   of the next) and deleted once delivered or dead-lettered, so retries waiting at a restart are
//!   resumed ([`run_pending`]).

pub(crate) mod endpoints;
pub(crate) mod envelope;
pub(crate) mod http;
pub(crate) mod retry;
pub(crate) mod sqs;

pub use endpoints::EndpointPolicy;
pub(crate) use envelope::{confirmation_json, notification_json, Published};
pub(crate) use http::{http_client, HttpClient};
pub(crate) use retry::{run_pending, PendingDelivery, RetryPolicy};
pub(crate) use sqs::{queue_name_of_arn, send_to_queue, sqs_attributes};
