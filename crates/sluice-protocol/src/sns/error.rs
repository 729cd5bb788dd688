//! SNS errors: one variant per kind of failure sluice reports, and the one table
//! ([`SnsError::wire`]) from each to AWS's error code, HTTP status and fault side. The message
//! (`Display`) is the `<Message>` of the error document and of a failed PublishBatch entry.

/// Which side AWS blames: `<Type>` of the error document, `SenderFault` of a batch entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

/// An SNS error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SnsError {
    /// A parameter is missing, malformed or not allowed; the message says which and why, in AWS's
    /// wording (`Invalid parameter: ...`).
    #[error("{0}")]
    InvalidParameter(String),
    /// A message attribute is invalid.
    #[error("{0}")]
    ParameterValueInvalid(String),
    #[error("Topic does not exist")]
    TopicNotFound,
    #[error("Subscription does not exist")]
    SubscriptionNotFound,
    /// The resource of a tagging request does not exist (tagging answers ResourceNotFound, not
    /// NotFound, as AWS does).
    #[error("Resource does not exist")]
    ResourceNotFound,
    /// An SNS action sluice knows but does not implement.
    #[error("The action {0} is not supported by sluice (SMS, mobile push and permissions are not implemented).")]
    UnsupportedAction(&'static str),
    /// An action name SNS does not have.
    #[error("The action {0} is not valid for this endpoint.")]
    InvalidAction(String),
    #[error("The batch request doesn't contain any entries")]
    EmptyBatchRequest,
    #[error("The batch request contains more entries than permissible")]
    TooManyEntriesInBatchRequest,
    #[error("The Id of a batch entry in a batch request doesn't abide by the specification")]
    InvalidBatchEntryId,
    #[error("Two or more batch entries in the request have the same Id")]
    BatchEntryIdsNotDistinct,
    #[error("The length of all the messages put together is more than the limit")]
    BatchRequestTooLong,
    #[error("Could not complete request: tag quota of per resource exceeded")]
    TagLimitExceeded,
    /// Storage or delivery trouble on our side.
    #[error("{0}")]
    Internal(String),
    /// The request's SigV4 signature is missing or does not verify.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The request is refused: a topic or identity policy denies it, or whoever sent it (a foreign
    /// web `Origin`, a `Host` that is not this server's, a state-changing action by unsigned GET:
    /// sluice's `guard`).
    #[error("{0}")]
    AuthorizationError(String),
}

pub type SnsResult<T> = Result<T, SnsError>;

impl SnsError {
    /// The one table: AWS's error code, HTTP status and fault side of every error.
    pub fn wire(&self) -> (&'static str, u16, Fault) {
        use Fault::{Receiver, Sender};
        match self {
            SnsError::InvalidParameter(_) => ("InvalidParameter", 400, Sender),
            SnsError::ParameterValueInvalid(_) => ("ParameterValueInvalid", 400, Sender),
            SnsError::TopicNotFound | SnsError::SubscriptionNotFound => ("NotFound", 404, Sender),
            SnsError::ResourceNotFound => ("ResourceNotFound", 404, Sender),
            SnsError::UnsupportedAction(_) | SnsError::InvalidAction(_) => ("InvalidAction", 400, Sender),
            SnsError::EmptyBatchRequest => ("EmptyBatchRequest", 400, Sender),
            SnsError::TooManyEntriesInBatchRequest => ("TooManyEntriesInBatchRequest", 400, Sender),
            SnsError::InvalidBatchEntryId => ("InvalidBatchEntryId", 400, Sender),
            SnsError::BatchEntryIdsNotDistinct => ("BatchEntryIdsNotDistinct", 400, Sender),
            SnsError::BatchRequestTooLong => ("BatchRequestTooLong", 400, Sender),
            SnsError::TagLimitExceeded => ("TagLimitExceeded", 400, Sender),
            SnsError::Internal(_) => ("InternalError", 500, Receiver),
            // SNS's modeled AuthorizationErrorException (botocore's sns service-2.json: code
            // AuthorizationError, 403, sender fault).
            SnsError::AuthorizationError(_) => ("AuthorizationError", 403, Sender),
            // SNS's Common Errors page lists the same codes and statuses as SQS's
            // (docs.aws.amazon.com/sns/latest/api/CommonErrors.html).
            SnsError::Auth(e) => {
                use crate::auth::AuthError as A;
                match e {
                    A::MissingToken => ("MissingAuthenticationToken", 403, Sender),
                    A::Incomplete(_) => ("IncompleteSignature", 400, Sender),
                    A::UnknownKey | A::InvalidToken => ("InvalidClientTokenId", 403, Sender),
                    A::Invalid(_) | A::Mismatch { .. } => ("SignatureDoesNotMatch", 403, Sender),
                }
            }
        }
    }

    /// AWS's error code (`<Code>`).
    pub fn code(&self) -> &'static str {
        self.wire().0
    }

    /// The HTTP status of the error response.
    pub fn status(&self) -> u16 {
        self.wire().1
    }

    /// Which side is at fault.
    pub fn fault(&self) -> Fault {
        self.wire().2
    }

    /// `InvalidParameter` with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        SnsError::InvalidParameter(message.into())
    }

    /// `ParameterValueInvalid` with this message.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        SnsError::ParameterValueInvalid(message.into())
    }

    /// `InternalError` with this message.
    pub fn internal(message: impl Into<String>) -> Self {
        SnsError::Internal(message.into())
    }

    /// A required parameter is missing: `Invalid parameter: <name>`.
    pub fn missing(name: &str) -> Self {
        Self::invalid(format!("Invalid parameter: {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_statuses_and_faults() {
        let cases = [
            (SnsError::invalid("x"), "InvalidParameter", 400, Fault::Sender, "x"),
            (SnsError::invalid_value("v"), "ParameterValueInvalid", 400, Fault::Sender, "v"),
            (SnsError::TopicNotFound, "NotFound", 404, Fault::Sender, "Topic does not exist"),
            (SnsError::SubscriptionNotFound, "NotFound", 404, Fault::Sender, "Subscription does not exist"),
            (SnsError::ResourceNotFound, "ResourceNotFound", 404, Fault::Sender, "Resource does not exist"),
            (
                SnsError::InvalidAction("Frob".into()),
                "InvalidAction",
                400,
                Fault::Sender,
                "The action Frob is not valid for this endpoint.",
            ),
            (
                SnsError::TagLimitExceeded,
                "TagLimitExceeded",
                400,
                Fault::Sender,
                "Could not complete request: tag quota of per resource exceeded",
            ),
            (SnsError::internal("disk"), "InternalError", 500, Fault::Receiver, "disk"),
            (SnsError::AuthorizationError("no".into()), "AuthorizationError", 403, Fault::Sender, "no"),
            (
                SnsError::Auth(crate::auth::AuthError::MissingToken),
                "MissingAuthenticationToken",
                403,
                Fault::Sender,
                "Request is missing Authentication Token",
            ),
            (
                SnsError::Auth(crate::auth::AuthError::UnknownKey),
                "InvalidClientTokenId",
                403,
                Fault::Sender,
                "The security token included in the request is invalid.",
            ),
            (
                SnsError::Auth(crate::auth::AuthError::Invalid("x".into())),
                "SignatureDoesNotMatch",
                403,
                Fault::Sender,
                "x",
            ),
            (
                SnsError::Auth(crate::auth::AuthError::Incomplete("y".into())),
                "IncompleteSignature",
                400,
                Fault::Sender,
                "y",
            ),
        ];
        for (e, code, status, fault, message) in cases {
            assert_eq!((e.code(), e.status(), e.fault()), (code, status, fault), "{e:?}");
            assert_eq!(e.to_string(), message);
        }
        assert_eq!(SnsError::missing("Name").to_string(), "Invalid parameter: Name");
    }
}
