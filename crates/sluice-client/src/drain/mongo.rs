//! MongoDB sink (feature `mongodb`): unordered `insert_many` per batch. A duplicate-key error
//! (code 11000) on `_id` means the record is already stored — a redelivery or a producer retry
//! — and counts as success; other per-document write errors reject that record only; a
//! write-concern error or any other failure makes the whole batch transient (retried or
//! redelivered; re-inserting is harmless because of the `_id` check).
//!
//! Acknowledgement follows the connection string's write concern: use `w=majority&journal=true`
//! if a record must survive a primary failure before its message is deleted.

use mongodb::bson::{oid::ObjectId, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::{Client, Collection};

use super::{Record, WriteOutcome};
use crate::error::{Error, Result};
use crate::objectid::is_object_id_hex;

/// MongoDB's duplicate-key error codes (11000; 11001 and 12582 from old servers).
pub const DUPLICATE_KEY_CODES: [i32; 3] = [11000, 11001, 12582];

/// Writes records into one collection.
pub struct MongoSink {
    coll: Collection<Document>,
    object_id: bool,
}

impl MongoSink {
    /// Connects and checks the server answers a ping.
    pub async fn connect(uri: &str, database: &str, collection: &str, object_id: bool) -> Result<MongoSink> {
        let client = Client::with_uri_str(uri).await.map_err(|e| Error::Database(e.to_string()))?;
        let db = client.database(database);
        db.run_command(mongodb::bson::doc! { "ping": 1 }).await.map_err(|e| Error::Database(format!("ping: {e}")))?;
        Ok(MongoSink { coll: db.collection(collection), object_id })
    }

    /// `database.collection`.
    pub fn namespace(&self) -> String {
        self.coll.namespace().to_string()
    }

    /// Writes a batch; see the module docs for how errors are classified.
    pub async fn write(&self, records: &[Record]) -> Result<WriteOutcome> {
        let mut docs = Vec::with_capacity(records.len());
        let mut index = Vec::with_capacity(records.len()); // docs[i] is records[index[i]]
        let mut rejected = Vec::new();
        for (i, r) in records.iter().enumerate() {
            match to_document(r, self.object_id) {
                Ok(d) => {
                    docs.push(d);
                    index.push(i);
                }
                Err(reason) => rejected.push((i, reason)),
            }
        }
        if docs.is_empty() {
            return Ok(WriteOutcome { committed: Vec::new(), inserted: 0, rejected });
        }
        let n = docs.len();
        let result = self.coll.insert_many(docs).ordered(false).await;
        let classified = match result {
            Ok(r) => Ok(classify_insert_many(n, &[], false).map(|mut o| {
                o.inserted = r.inserted_ids.len() as u64;
                o
            })?),
            Err(e) => match *e.kind {
                ErrorKind::InsertMany(ref ime) => {
                    let errors: Vec<(usize, i32, String)> =
                        ime.write_errors.iter().flatten().map(|w| (w.index, w.code, w.message.clone())).collect();
                    classify_insert_many(n, &errors, ime.write_concern_error.is_some())
                }
                _ => Err(Error::Database(e.to_string())),
            },
        }?;
        // Map indices back to `records`.
        Ok(WriteOutcome {
            committed: classified.committed.iter().map(|&i| index[i]).collect(),
            inserted: classified.inserted,
            rejected: rejected.into_iter().chain(classified.rejected.into_iter().map(|(i, r)| (index[i], r))).collect(),
        })
    }
}

/// The BSON document for a record: the JSON object (extended JSON such as `{"$oid": …}` is
/// understood) with `_id` set to the record id — as an ObjectId when `object_id` is set and the
/// id is 24 hex characters, else as a string.
pub fn to_document(r: &Record, object_id: bool) -> std::result::Result<Document, String> {
    let obj = r.doc.as_object().ok_or("not a JSON object")?.clone();
    let mut doc = Document::try_from(obj).map_err(|e| format!("not convertible to BSON: {e}"))?;
    let id = if object_id && is_object_id_hex(&r.id) {
        Bson::ObjectId(ObjectId::parse_str(&r.id).map_err(|e| e.to_string())?)
    } else {
        Bson::String(r.id.clone())
    };
    doc.insert("_id", id);
    Ok(doc)
}

/// Classifies the answer to an unordered `insert_many` of `n` documents: `write_errors` are
/// `(index, code, message)`. Duplicate keys count as committed (already stored); other write
/// errors reject their document; a write-concern error (or an error index out of range) makes
/// the whole batch an error, since nothing is known to be durable.
pub fn classify_insert_many(
    n: usize,
    write_errors: &[(usize, i32, String)],
    write_concern_failed: bool,
) -> Result<WriteOutcome> {
    if write_concern_failed {
        return Err(Error::Database("write concern not satisfied".into()));
    }
    let mut failed = vec![None::<&(usize, i32, String)>; n];
    for e in write_errors {
        match failed.get_mut(e.0) {
            Some(slot) => *slot = Some(e),
            None => return Err(Error::Database(format!("write error for index {} of a batch of {n}", e.0))),
        }
    }
    let mut out = WriteOutcome::default();
    for (i, f) in failed.into_iter().enumerate() {
        match f {
            None => {
                out.committed.push(i);
                out.inserted += 1;
            }
            Some((_, code, _)) if DUPLICATE_KEY_CODES.contains(code) => out.committed.push(i),
            Some((_, code, msg)) => out.rejected.push((i, format!("code {code}: {msg}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_inserted() {
        let o = classify_insert_many(3, &[], false).unwrap();
        assert_eq!(o.committed, vec![0, 1, 2]);
        assert_eq!(o.inserted, 3);
        assert!(o.rejected.is_empty());
    }

    #[test]
    fn duplicate_keys_count_as_committed() {
        let errs = vec![(1, 11000, "E11000 duplicate key".to_string()), (3, 11000, "dup".to_string())];
        let o = classify_insert_many(5, &errs, false).unwrap();
        assert_eq!(o.committed, vec![0, 1, 2, 3, 4]);
        assert_eq!(o.inserted, 3);
        assert!(o.rejected.is_empty());
    }

    #[test]
    fn other_write_errors_reject_only_their_document() {
        let errs = vec![(0, 121, "Document failed validation".to_string()), (2, 11000, "dup".to_string())];
        let o = classify_insert_many(3, &errs, false).unwrap();
        assert_eq!(o.committed, vec![1, 2]);
        assert_eq!(o.inserted, 1);
        assert_eq!(o.rejected.len(), 1);
        assert_eq!(o.rejected[0].0, 0);
    }

    #[test]
    fn write_concern_errors_fail_the_batch() {
        assert!(classify_insert_many(2, &[], true).is_err());
        assert!(classify_insert_many(2, &[(5, 11000, String::new())], false).is_err());
    }

    #[test]
    fn documents_get_the_record_id() {
        let r = Record {
            id: "65a1b2c3d4e5f60718293a4b".into(),
            doc: json!({"_id": "65a1b2c3d4e5f60718293a4b", "op": "x", "n": 3}),
        };
        let d = to_document(&r, false).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), "65a1b2c3d4e5f60718293a4b");
        assert_eq!(d.get_str("op").unwrap(), "x");
        let d = to_document(&r, true).unwrap();
        assert_eq!(d.get_object_id("_id").unwrap().to_hex(), "65a1b2c3d4e5f60718293a4b");
        // Another id field: `_id` is added.
        let r = Record { id: "abc".into(), doc: json!({"opId": "abc"}) };
        let d = to_document(&r, true).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), "abc");
        assert_eq!(d.get_str("opId").unwrap(), "abc");
        // Extended JSON is understood.
        let r =
            Record { id: "65a1b2c3d4e5f60718293a4b".into(), doc: json!({"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}}) };
        assert!(to_document(&r, true).unwrap().get_object_id("_id").is_ok());
    }
}
