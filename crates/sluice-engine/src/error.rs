//! The engine's errors. Each variant is one AWS error; the protocol crate maps variants to AWS codes
//! and HTTP statuses in one place (`sluice_protocol::sqs::error`). Messages follow AWS's wording where known.

use sluice_store::StoreError;

/// An SQS-level failure of a request or of one batch entry.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    #[error("A queue already exists with the same name and a different value for attribute {0}")]
    QueueNameExists(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    /// A genuine handle presented to another queue (AWS's text, quoted in aws/aws-sdk-java-v2#3101).
    #[error("The receipt handle \"{0}\" is not valid for this queue.")]
    ReceiptHandleOfOtherQueue(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    MessageNotInflight,
    #[error("Maximum number of entries per request are 10. You have sent {0}.")]
    TooManyEntriesInBatchRequest(usize),
    #[error("There should be at least one {0} in the request.")]
    EmptyBatchRequest(&'static str),
    #[error("Id {0} repeated.")]
    BatchEntryIdsNotDistinct(String),
    #[error("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")]
    InvalidBatchEntryId,
    #[error("Batch requests cannot be longer than {0} bytes. You have sent {1} bytes.")]
    BatchRequestTooLong(usize, usize),
    #[error("{0}")]
    InvalidMessageContents(String),
    #[error("Only one PurgeQueue operation on {0} is allowed every 60 seconds.")]
    PurgeQueueInProgress(String),
    #[error("{0}")]
    OverLimit(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("You must wait 60 seconds after deleting a queue before you can create another with the same name ({0}).")]
    QueueDeletedRecently(String),
    /// The queue's `KmsMasterKeyId` names no configured key (SendMessage, as on AWS).
    #[error("{0}")]
    KmsNotFound(String),
    /// Encryption at rest cannot start: a data key that does not unwrap, or encrypted data and no key.
    #[error("encryption at rest: {0}")]
    AtRest(String),
    #[error("Internal error: {0}")]
    Internal(String),
    /// The store cannot record the change now (the disk is full); nothing was changed. Retryable
    /// (503 `ServiceUnavailable`): the store resumes by itself once space is back.
    #[error("Service unavailable: {0}; retry later.")]
    Unavailable(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full(_) => EngineError::Unavailable(e.to_string()),
            e => EngineError::Internal(e.to_string()),
        }
    }
}

/// Shorthand for results of engine operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
