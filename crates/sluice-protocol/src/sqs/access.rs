//! The policy check of an SQS action: which IAM action and queue it is about, the queue's parsed
//! policy from the engine, and the verdict (see `crate::auth::access`).
//!
//! Batch operations are authorised as their singular action (SendMessageBatch as
//! `sqs:SendMessage`, DeleteMessageBatch as `sqs:DeleteMessage`, ChangeMessageVisibilityBatch as
//! `sqs:ChangeMessageVisibility`), as AWS does (SQS's "Amazon SQS API permissions: Actions and
//! resource reference"; the recorded denial of SendMessageBatch names `sqs:sendmessage`,
//! aws/serverless-application-model#3633). ListQueues is about the caller's own account: a key
//! of another account is allowed it and sees no queue (all queues here are the server's account's).

use sluice_engine::Engine;

use super::action::{queue_name, Action};
use super::dispatch::Context;
use super::error::ApiError;
use crate::auth::access::Access;

/// The IAM action an operation is authorised as.
fn iam_operation(action: &Action) -> &'static str {
    match action {
        Action::SendMessageBatch(_) => "SendMessage",
        Action::DeleteMessageBatch(_) => "DeleteMessage",
        Action::ChangeMessageVisibilityBatch(_) => "ChangeMessageVisibility",
        other => other.name(),
    }
}

/// The queue an action is about, by name, when it names one.
fn target_queue(action: &Action) -> Option<String> {
    let url = |u: &Option<String>| u.as_deref().and_then(|u| queue_name(u).ok());
    let arn = |a: &Option<String>| a.as_deref().and_then(|a| a.rsplit(':').next()).map(str::to_string);
    match action {
        Action::CreateQueue(a) => a.queue_name.clone(),
        Action::GetQueueUrl(a) => a.queue_name.clone(),
        Action::ListQueues(_) | Action::CancelMessageMoveTask(_) => None,
        Action::DeleteQueue(a) => url(&a.queue_url),
        Action::GetQueueAttributes(a) => url(&a.queue_url),
        Action::SetQueueAttributes(a) => url(&a.queue_url),
        Action::SendMessage(a) => url(&a.queue_url),
        Action::SendMessageBatch(a) => url(&a.queue_url),
        Action::ReceiveMessage(a) => url(&a.queue_url),
        Action::DeleteMessage(a) => url(&a.queue_url),
        Action::DeleteMessageBatch(a) => url(&a.queue_url),
        Action::ChangeMessageVisibility(a) => url(&a.queue_url),
        Action::ChangeMessageVisibilityBatch(a) => url(&a.queue_url),
        Action::PurgeQueue(a) => url(&a.queue_url),
        Action::TagQueue(a) => url(&a.queue_url),
        Action::UntagQueue(a) => url(&a.queue_url),
        Action::ListQueueTags(a) => url(&a.queue_url),
        Action::AddPermission(a) => url(&a.queue_url),
        Action::RemovePermission(a) => url(&a.queue_url),
        Action::ListDeadLetterSourceQueues(a) => url(&a.queue_url),
        Action::StartMessageMoveTask(a) => arn(&a.source_arn),
        Action::ListMessageMoveTasks(a) => arn(&a.source_arn),
    }
}

/// Whether the caller may run `action`; `AccessDenied` with AWS's message if not.
pub(super) fn authorize(engine: &Engine, ctx: &Context<'_>, action: &Action) -> Result<(), ApiError> {
    let Some(identity) = ctx.caller.identity else { return Ok(()) };
    let resource_account =
        if matches!(action, Action::ListQueues(_)) { identity.account_id() } else { engine.account_id() };
    if ctx.caller.unrestricted(resource_account) {
        return Ok(());
    }
    let queue = target_queue(action);
    // A queue that does not exist has no policy: the owner goes on to QueueDoesNotExist, another
    // account is denied (and learns nothing about which queues exist).
    let policy = queue.as_deref().and_then(|q| engine.queue_policy(q).ok().flatten());
    let resource = match &queue {
        Some(name) => engine.queue_arn(name),
        None => format!("arn:aws:sqs:{}:{resource_account}:*", engine.region()),
    };
    let iam_action = format!("sqs:{}", iam_operation(action));
    let access = Access {
        action: &iam_action,
        resource: &resource,
        resource_account,
        policy: policy.as_deref(),
        now_ms: engine.shared_clock().now_ms(),
    };
    ctx.caller.check(&access).map_err(ApiError::AccessDenied)
}
