//! The error type of this crate.

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An SQS call failed (transport error, or an error answer from the service).
    #[error("SQS {operation} failed: {message}")]
    Sqs {
        /// The operation, e.g. `SendMessageBatch`.
        operation: &'static str,
        /// The service's error code when it answered one (e.g. `UnsupportedOperation`).
        code: Option<String>,
        /// Human-readable detail.
        message: String,
    },
    /// One entry of a batch call was refused by the service.
    #[error("SQS refused the entry ({code}): {message}")]
    Entry {
        /// The service's error code for the entry.
        code: String,
        /// Detail.
        message: String,
        /// True when the service says the request itself is wrong (retrying will not help).
        sender_fault: bool,
    },
    /// A value could not be serialized or parsed as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A message is larger than the SQS request limit.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Size of the message (body plus attributes).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A wait ran out (request-reply).
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The component was shut down before the operation completed.
    #[error("closed")]
    Closed,
    /// A database error in the drain.
    #[error("database: {0}")]
    Database(String),
    /// Bad configuration or arguments.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The HTTPS client cannot be set up (unreadable or invalid CA file, no root certificates).
    #[error("TLS: {0}")]
    Tls(String),
}

/// Shorthand for `Result<T, sluice_client::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an SDK error, keeping the service's error code.
    pub fn sqs<E, R>(operation: &'static str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.as_service_error().and_then(|e| e.code()).map(str::to_string);
        let message = match err.as_service_error().and_then(|e| e.message()) {
            Some(m) => m.to_string(),
            None => aws_sdk_sqs::error::DisplayErrorContext(&err).to_string(),
        };
        Error::Sqs { operation, code, message }
    }

    /// The service's error code, if this is an SQS error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Sqs { code, .. } => code.as_deref(),
            Error::Entry { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True for errors that say "this server does not implement that operation".
    pub fn is_unsupported_operation(&self) -> bool {
        self.code().is_some_and(|c| {
            c.contains("UnsupportedOperation") || c.contains("InvalidAction") || c.contains("UnknownOperation")
        })
    }
}
