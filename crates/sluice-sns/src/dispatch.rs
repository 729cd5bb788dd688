//! Dispatch: the one `match` from a decoded [`SnsAction`] to the handler of its operation.

use std::sync::Arc;

use crate::action::{SnsAction, SnsReply};
use crate::error::SnsResult;
use crate::Inner;

impl Inner {
    /// Runs one request. `base_url` is where SubscribeURL / UnsubscribeURL / SigningCertURL point.
    pub(crate) async fn dispatch(self: &Arc<Self>, action: SnsAction, base_url: &str) -> SnsResult<SnsReply> {
        Ok(match action {
            SnsAction::CreateTopic(i) => SnsReply::CreateTopic(self.create_topic(i).await?),
            SnsAction::DeleteTopic(i) => SnsReply::DeleteTopic(self.delete_topic(i).await?),
            SnsAction::ListTopics(i) => SnsReply::ListTopics(self.list_topics(i)?),
            SnsAction::GetTopicAttributes(i) => SnsReply::GetTopicAttributes(self.get_topic_attributes(i)?),
            SnsAction::SetTopicAttributes(i) => SnsReply::SetTopicAttributes(self.set_topic_attributes(i).await?),
            SnsAction::Subscribe(i) => SnsReply::Subscribe(self.subscribe(i, base_url).await?),
            SnsAction::ConfirmSubscription(i) => SnsReply::ConfirmSubscription(self.confirm_subscription(i).await?),
            SnsAction::Unsubscribe(i) => SnsReply::Unsubscribe(self.unsubscribe(i).await?),
            SnsAction::ListSubscriptions(i) => {
                SnsReply::ListSubscriptions(self.list_subscriptions(i.next_token.as_deref(), None)?)
            }
            SnsAction::ListSubscriptionsByTopic(i) => {
                SnsReply::ListSubscriptionsByTopic(self.list_subscriptions_by_topic(i)?)
            }
            SnsAction::GetSubscriptionAttributes(i) => {
                SnsReply::GetSubscriptionAttributes(self.get_subscription_attributes(i)?)
            }
            SnsAction::SetSubscriptionAttributes(i) => {
                SnsReply::SetSubscriptionAttributes(self.set_subscription_attributes(i).await?)
            }
            SnsAction::Publish(i) => SnsReply::Publish(self.publish(i, base_url).await?),
            SnsAction::PublishBatch(i) => SnsReply::PublishBatch(self.publish_batch(i, base_url).await?),
            SnsAction::TagResource(i) => SnsReply::TagResource(self.tag_resource(i).await?),
            SnsAction::UntagResource(i) => SnsReply::UntagResource(self.untag_resource(i).await?),
            SnsAction::ListTagsForResource(i) => SnsReply::ListTagsForResource(self.list_tags(i)?),
        })
    }
}
