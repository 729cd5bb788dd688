//! Rules shared by every batch action (SendMessageBatch, DeleteMessageBatch,
//! ChangeMessageVisibilityBatch): 1–10 entries, distinct ids of at most 80 alphanumeric, `-` or `_`.

use std::collections::HashSet;

use crate::error::{EngineError, Result};

/// Most entries in one batch request.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// Checks a batch's entry ids. `entry_name` is the member name used in AWS's message
/// (e.g. `SendMessageBatchRequestEntry`).
pub fn check_entry_ids<'a>(ids: impl ExactSizeIterator<Item = &'a str>, entry_name: &'static str) -> Result<()> {
    let n = ids.len();
    if n == 0 {
        return Err(EngineError::EmptyBatchRequest(entry_name));
    }
    if n > MAX_BATCH_ENTRIES {
        return Err(EngineError::TooManyEntriesInBatchRequest(n));
    }
    let mut seen = HashSet::with_capacity(n);
    for id in ids {
        let valid =
            !id.is_empty() && id.len() <= 80 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(EngineError::InvalidBatchEntryId);
        }
        if !seen.insert(id) {
            return Err(EngineError::BatchEntryIdsNotDistinct(id.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_id_rules() {
        let e = "E";
        assert_eq!(check_entry_ids([].into_iter(), e), Err(EngineError::EmptyBatchRequest(e)));
        let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert_eq!(
            check_entry_ids(eleven.iter().map(String::as_str), e),
            Err(EngineError::TooManyEntriesInBatchRequest(11))
        );
        assert_eq!(check_entry_ids(["a", "a"].into_iter(), e), Err(EngineError::BatchEntryIdsNotDistinct("a".into())));
        assert_eq!(check_entry_ids(["a b"].into_iter(), e), Err(EngineError::InvalidBatchEntryId));
        let long = "x".repeat(81);
        assert_eq!(check_entry_ids([long.as_str()].into_iter(), e), Err(EngineError::InvalidBatchEntryId));
        assert!(check_entry_ids(["a-1", "B_2"].into_iter(), e).is_ok());
    }
}
