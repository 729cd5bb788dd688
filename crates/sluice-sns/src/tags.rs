//! Topic tags: TagResource, UntagResource, ListTagsForResource.

use crate::records::Topic;
use crate::validation::validate_tags;
use crate::wire::{el, Params, SnsError, SnsResult};
use crate::Inner;

impl Inner {
    /// The topic a tagging request names (ResourceNotFound, as AWS answers, if none).
    fn tagged_topic(&self, arn: &str) -> SnsResult<Topic> {
        self.lock()
            .topics
            .get(arn)
            .cloned()
            .ok_or_else(|| SnsError::new("ResourceNotFound", 404, "Resource does not exist"))
    }


    pub(crate) async fn tag_resource(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("ResourceArn")?.to_string();
        let tags = p.tags("Tags");
        let _w = self.writes.lock().await;
        let mut t = self.tagged_topic(&arn)?;
        for (k, v) in tags {
            t.tags.insert(k, v);
        }
        validate_tags(&t.tags)?;
        self.save_topic(arn, t).await
    }

    pub(crate) async fn untag_resource(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("ResourceArn")?.to_string();
        let keys = p.members("TagKeys");
        let _w = self.writes.lock().await;
        let mut t = self.tagged_topic(&arn)?;
        for k in keys {
            t.tags.remove(&k);
        }
        self.save_topic(arn, t).await
    }

    pub(crate) fn list_tags(&self, p: &Params) -> SnsResult<String> {
        let arn = p.required("ResourceArn")?;
        let st = self.lock();
        let t = st
            .topics
            .get(arn)
            .ok_or_else(|| SnsError::new("ResourceNotFound", 404, "Resource does not exist"))?;
        let mut out = String::from("<Tags>");
        for (k, v) in &t.tags {
            out.push_str(&format!(
                "<member>{}{}</member>",
                el("Key", k),
                el("Value", v)
            ));
        }
        out.push_str("</Tags>");
        Ok(out)
    }

}
