//! Every error the server returns, and the one place that maps it to AWS's wire form: the JSON
//! `__type`, the Query-protocol code (also sent in the `x-amzn-query-error` header), the fault side
//! and the HTTP status.

use sluice_engine::EngineError;

use crate::auth::AuthError;

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    /// An SQS semantic error from the engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The X-Amz-Target or Action names no SQS operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// A Query-protocol request without an Action.
    #[error("No action was supplied with this request.")]
    MissingAction,
    /// A JSON body that is not valid JSON or does not fit the operation's shape.
    #[error("{0}")]
    Serialization(String),
    /// A form body or query string that cannot be decoded.
    #[error("{0}")]
    MalformedQueryString(String),
    /// A body that is neither JSON with X-Amz-Target nor a form.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A request body larger than the server accepts.
    #[error("Request body of {0} bytes exceeds the maximum of {1} bytes.")]
    RequestTooLarge(usize, usize),
    /// A feature AWS reserves and does not implement (e.g. message attribute list values).
    #[error("{0} are not supported.")]
    UnsupportedOperation(String),
    /// The server cannot serve requests yet (still recovering its store at startup). SDKs retry it.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// The request's SigV4 signature is missing or does not verify.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The request is refused: a policy denies it (the message names principal, action, resource
    /// and why), or whoever sent it (a foreign web `Origin`, a `Host` that is not this server's, a
    /// state-changing action by unsigned GET: sluice's `guard`).
    #[error("{0}")]
    AccessDenied(String),
    /// The client did not send its whole request in time (the listener's body timeout). The AWS
    /// SDKs retry this code as a transient error.
    #[error("{0}")]
    RequestTimeout(String),
}

/// How an [`ApiError`] looks on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError {
    /// The JSON `__type`: `com.amazonaws.sqs#<Shape>` for modeled errors, AWS's framework
    /// (`com.amazon.coral.service#...`) names for the rest.
    pub json_type: &'static str,
    /// The Query-protocol code (also the first half of `x-amzn-query-error`).
    pub query_code: &'static str,
    /// True for client errors ("Sender"), false for server errors ("Receiver").
    pub sender_fault: bool,
    /// HTTP status.
    pub status: u16,
}

const fn sender(json_type: &'static str, query_code: &'static str, status: u16) -> WireError {
    WireError { json_type, query_code, sender_fault: true, status }
}

/// A modeled SQS error: `__type` is `com.amazonaws.sqs#<shape>`.
macro_rules! sqs {
    ($shape:literal, $code:expr, $status:expr) => {
        sender(concat!("com.amazonaws.sqs#", $shape), $code, $status)
    };
}

/// An error of AWS's service framework, not modeled by SQS.
macro_rules! coral {
    ($name:literal, $code:expr, $status:expr) => {
        sender(concat!("com.amazon.coral.service#", $name), $code, $status)
    };
}

impl ApiError {
    /// The wire form of this error: AWS's codes and statuses, in one table.
    pub fn wire(&self) -> WireError {
        use EngineError as E;
        match self {
            ApiError::Engine(e) => match e {
                E::QueueDoesNotExist => sqs!("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400),
                E::QueueNameExists(_) => sqs!("QueueNameExists", "QueueAlreadyExists", 400),
                E::InvalidParameterValue(_) => coral!("InvalidParameterValueException", "InvalidParameterValue", 400),
                E::MissingParameter(_) => coral!("MissingRequiredParameterException", "MissingParameter", 400),
                E::InvalidAttributeName(_) => sqs!("InvalidAttributeName", "InvalidAttributeName", 400),
                E::InvalidAttributeValue(_) => sqs!("InvalidAttributeValue", "InvalidAttributeValue", 400),
                E::ReceiptHandleIsInvalid(_) | E::ReceiptHandleOfOtherQueue(_) => {
                    sqs!("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404)
                }
                E::MessageNotInflight => sqs!("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", 400),
                E::TooManyEntriesInBatchRequest(_) => {
                    sqs!("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400)
                }
                E::EmptyBatchRequest(_) => sqs!("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400),
                E::BatchEntryIdsNotDistinct(_) => {
                    sqs!("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400)
                }
                E::InvalidBatchEntryId => {
                    sqs!("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", 400)
                }
                E::BatchRequestTooLong(..) => {
                    sqs!("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", 400)
                }
                E::InvalidMessageContents(_) => sqs!("InvalidMessageContents", "InvalidMessageContents", 400),
                E::PurgeQueueInProgress(_) => {
                    sqs!("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403)
                }
                E::OverLimit(_) => sqs!("OverLimit", "OverLimit", 403),
                E::QueueDeletedRecently(_) => {
                    sqs!("QueueDeletedRecently", "AWS.SimpleQueueService.QueueDeletedRecently", 400)
                }
                E::ResourceNotFound(_) => sqs!("ResourceNotFoundException", "ResourceNotFoundException", 404),
                // The disk is full: retryable, as AWS SDKs retry a 503 (docs/ARCHITECTURE.md).
                E::Unavailable(_) => WireError {
                    json_type: "com.amazon.coral.service#ServiceUnavailable",
                    query_code: "ServiceUnavailable",
                    sender_fault: false,
                    status: 503,
                },
                // botocore's model: KmsNotFound, a SendMessage error, Query code as the SQS
                // developer guide's KMS errors name it (KMS.NotFoundException).
                E::KmsNotFound(_) => sqs!("KmsNotFound", "KMS.NotFoundException", 400),
                E::Internal(_) | E::AtRest(_) => WireError {
                    json_type: "com.amazon.coral.service#InternalFailure",
                    query_code: "InternalFailure",
                    sender_fault: false,
                    status: 500,
                },
            },
            ApiError::UnknownOperation(_) => coral!("UnknownOperationException", "InvalidAction", 400),
            ApiError::MissingAction => coral!("MissingAction", "MissingAction", 400),
            ApiError::Serialization(_) => coral!("SerializationException", "MalformedInput", 400),
            // AWS's common-errors table gives MalformedQueryString status 404.
            ApiError::MalformedQueryString(_) => coral!("MalformedQueryString", "MalformedQueryString", 404),
            ApiError::UnsupportedMediaType(_) => coral!("UnsupportedMediaType", "UnsupportedMediaType", 415),
            ApiError::RequestTooLarge(..) => coral!("RequestEntityTooLarge", "RequestEntityTooLarge", 413),
            ApiError::UnsupportedOperation(_) => {
                sqs!("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400)
            }
            // Authentication, as AWS's service framework answers it for SQS: JSON `__type`s as
            // recorded by dynalite (mhart/dynalite index.js: MissingAuthenticationTokenException,
            // IncompleteSignatureException, UnrecognizedClientException, InvalidSignatureException;
            // SQS's JSON protocol answers a bad signature with the same InvalidSignatureException,
            // async-aws/aws#1948); Query codes and statuses from SQS's Common Errors page
            // (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html:
            // MissingAuthenticationToken 403, InvalidClientTokenId 403, IncompleteSignature 400) and
            // recorded Query answers (SignatureDoesNotMatch, 403: boto/boto#1573).
            ApiError::Auth(e) => match e {
                AuthError::MissingToken => {
                    coral!("MissingAuthenticationTokenException", "MissingAuthenticationToken", 403)
                }
                AuthError::Incomplete(_) => coral!("IncompleteSignatureException", "IncompleteSignature", 400),
                AuthError::UnknownKey | AuthError::InvalidToken => {
                    coral!("UnrecognizedClientException", "InvalidClientTokenId", 403)
                }
                AuthError::Invalid(_) | AuthError::Mismatch { .. } => {
                    coral!("InvalidSignatureException", "SignatureDoesNotMatch", 403)
                }
            },
            // As measured on AWS (Floci's "Design: resource policy enforcement", floci-io/floci,
            // shapes R1-R3): JSON `__type` com.amazon.coral.service#AccessDeniedException with
            // `x-amzn-query-error: AccessDenied;Sender`, Query code AccessDenied, 403 in both. The
            // guard's refusals use it too: SQS's modeled `InvalidSecurity` means "not HTTPS / not
            // SigV4", which is not what they say.
            ApiError::AccessDenied(_) => coral!("AccessDeniedException", "AccessDenied", 403),
            ApiError::ServiceUnavailable(_) => WireError {
                json_type: "com.amazon.coral.service#ServiceUnavailable",
                query_code: "ServiceUnavailable",
                sender_fault: false,
                status: 503,
            },
            // botocore's legacy retry table matches this code with status 408; its standard
            // mode retries RequestTimeout and RequestTimeoutException alike.
            ApiError::RequestTimeout(_) => coral!("RequestTimeoutException", "RequestTimeoutException", 408),
        }
    }

    /// The code a batch result entry carries for this error (`BatchResultErrorEntry.Code`).
    pub fn entry_code(&self) -> &'static str {
        let code = self.wire().query_code;
        code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonexistent_queue_has_both_names() {
        let w = ApiError::Engine(EngineError::QueueDoesNotExist).wire();
        assert_eq!(
            (w.json_type, w.query_code, w.status),
            ("com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400)
        );
        let w = ApiError::Engine(EngineError::MissingParameter("X".into()));
        assert_eq!(w.wire().json_type, "com.amazon.coral.service#MissingRequiredParameterException");
        assert_eq!(w.entry_code(), "MissingParameter");
        assert_eq!(ApiError::Engine(EngineError::MessageNotInflight).entry_code(), "MessageNotInflight");
        assert_eq!(
            ApiError::Engine(EngineError::ReceiptHandleIsInvalid("x".into())).entry_code(),
            "ReceiptHandleIsInvalid"
        );
        assert_eq!(ApiError::Engine(EngineError::OverLimit(String::new())).wire().status, 403);
        let w = ApiError::AccessDenied("no".into()).wire();
        assert_eq!(
            (w.json_type, w.query_code, w.status, w.sender_fault),
            ("com.amazon.coral.service#AccessDeniedException", "AccessDenied", 403, true)
        );
    }

    #[test]
    fn authentication_errors() {
        let cases = [
            (
                AuthError::MissingToken,
                "com.amazon.coral.service#MissingAuthenticationTokenException",
                "MissingAuthenticationToken",
                403,
            ),
            (
                AuthError::Incomplete("x".into()),
                "com.amazon.coral.service#IncompleteSignatureException",
                "IncompleteSignature",
                400,
            ),
            (
                AuthError::UnknownKey,
                "com.amazon.coral.service#UnrecognizedClientException",
                "InvalidClientTokenId",
                403,
            ),
            (
                AuthError::InvalidToken,
                "com.amazon.coral.service#UnrecognizedClientException",
                "InvalidClientTokenId",
                403,
            ),
            (
                AuthError::Invalid("x".into()),
                "com.amazon.coral.service#InvalidSignatureException",
                "SignatureDoesNotMatch",
                403,
            ),
        ];
        for (e, json_type, code, status) in cases {
            let w = ApiError::Auth(e).wire();
            assert_eq!((w.json_type, w.query_code, w.status, w.sender_fault), (json_type, code, status, true));
        }
    }
}
