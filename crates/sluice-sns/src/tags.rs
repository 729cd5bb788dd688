//! Topic tags: TagResource, UntagResource, ListTagsForResource.

use crate::action::{EmptyResult, ListTagsForResourceInput, ListTagsOutput, Tag, TagResourceInput, UntagResourceInput};
use crate::error::{SnsError, SnsResult};
use crate::records::Topic;
use crate::validation::validate_tags;
use crate::Inner;

impl Inner {
    /// The topic a tagging request names (ResourceNotFound, as AWS answers, if none).
    fn tagged_topic(&self, arn: &str) -> SnsResult<Topic> {
        self.lock().topics.get(arn).cloned().ok_or(SnsError::ResourceNotFound)
    }

    pub(crate) async fn tag_resource(&self, input: TagResourceInput) -> SnsResult<EmptyResult> {
        let arn = input.resource_arn;
        let _w = self.writes.lock().await;
        let mut t = self.tagged_topic(&arn)?;
        for tag in input.tags {
            t.tags.insert(tag.key, tag.value);
        }
        validate_tags(&t.tags)?;
        self.save_topic(arn, t).await.map(|_| EmptyResult)
    }

    pub(crate) async fn untag_resource(&self, input: UntagResourceInput) -> SnsResult<EmptyResult> {
        let arn = input.resource_arn;
        let _w = self.writes.lock().await;
        let mut t = self.tagged_topic(&arn)?;
        for k in input.tag_keys {
            t.tags.remove(&k);
        }
        self.save_topic(arn, t).await.map(|_| EmptyResult)
    }

    pub(crate) fn list_tags(&self, input: ListTagsForResourceInput) -> SnsResult<ListTagsOutput> {
        let st = self.lock();
        let t = st.topics.get(&input.resource_arn).ok_or(SnsError::ResourceNotFound)?;
        let tags = t.tags.iter().map(|(k, v)| Tag { key: k.clone(), value: v.clone() }).collect();
        Ok(ListTagsOutput { tags })
    }
}
