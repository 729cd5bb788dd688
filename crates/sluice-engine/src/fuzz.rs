//! Property and fuzz tests (test builds only) of this crate's readers of untrusted bytes: receipt
//! handles (from clients), Policy documents, and the records read back from the store (message
//! meta and body records, queue records, de-duplication entries), whose bytes a damaged disk can
//! make anything (issue 24, item 4).
//!
//! Properties: decoding arbitrary input never panics and never allocates more than a small
//! multiple of its length (checked by [`LargestAllocation`], the test binary's allocator);
//! whatever is encoded decodes to itself; a tampered receipt handle is refused. arbtest picks a
//! new seed each run and prints it when a property fails; each property has a bounded budget.

use sluice_fuzzkit::{largest_allocation_during, Result as AResult, Unstructured};

use crate::dedup::DedupEntry;
use crate::message::{AttributeValue, Attributes};
use crate::policy::{add_permission, remove_permission};
use crate::receipt::{Receipt, ReceiptKey};
use crate::record::{BodyRecord, MessageMeta, QueueRecord};

const BUDGET_MS: u64 = 500;

/// Runs `property` for [`BUDGET_MS`] (or `SLUICE_FUZZ_MS`, to fuzz longer by hand).
fn run(property: impl FnMut(&mut Unstructured<'_>) -> AResult<()>) {
    sluice_fuzzkit::run(BUDGET_MS, None, property);
}

#[global_allocator]
static ALLOCATOR: sluice_fuzzkit::LargestAllocation = sluice_fuzzkit::LargestAllocation;

/// What a decoder may allocate for `input`: a few times its size, plus room for fixed tables.
fn bounded(input: &[u8]) -> usize {
    4 * input.len() + 64 * 1024
}

/// The same for bincode/serde records: serde pre-sizes a sequence from its length prefix, but
/// never beyond 1 MiB ("cautious" size hints), so a lying prefix costs at most that, once per
/// nested sequence at a time. A prefix of 2^60 taken at its word would fail this bound.
fn bounded_serde(input: &[u8]) -> usize {
    bounded(input) + (1 << 20)
}

fn string(u: &mut Unstructured<'_>) -> AResult<String> {
    if u.ratio(1, 4)? {
        Ok(u.choose(&["", "\u{0}", "]]>", "g\u{FFFF}", "😀", "A", "-x"])?.to_string())
    } else {
        u.arbitrary()
    }
}

fn attributes(u: &mut Unstructured<'_>) -> AResult<Attributes> {
    let mut out = Attributes::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let value = AttributeValue {
            data_type: string(u)?,
            string_value: if u.arbitrary()? { Some(string(u)?) } else { None },
            binary_value: if u.arbitrary()? { Some(u.arbitrary()?) } else { None },
        };
        out.insert(string(u)?, value);
    }
    Ok(out)
}

#[test]
fn the_allocation_probe_sees_allocations() {
    let (v, largest) = largest_allocation_during(|| vec![0u8; 3 << 20]);
    assert_eq!(v.len(), 3 << 20);
    assert!(largest >= 3 << 20, "{largest}");
}

// ------------------------------------------------------------------------------------------------ receipts

#[test]
fn receipt_handles_round_trip_and_refuse_anything_else() {
    let key = ReceiptKey::new(b"a secret of this server, 32 bytes");
    let other = ReceiptKey::new(b"another server's secret, 32 bytes");
    run(|u| {
        // Arbitrary text is refused (or, if it happens to be valid, was issued by this key).
        let text = string(u)?;
        if let Some(r) = key.check(&text) {
            assert_eq!(key.check(&key.issue(r)), Some(r));
        }
        let r = Receipt { queue: u.arbitrary()?, seq: u.arbitrary()?, receive: u.arbitrary()? };
        let handle = key.issue(r);
        assert_eq!(key.check(&handle), Some(r));
        assert_eq!(other.check(&handle), None, "a handle of another key");
        // One character changed, dropped or added: refused.
        let mut chars: Vec<char> = handle.chars().collect();
        let i = u.choose_index(chars.len())?;
        let tampered: String = match u.int_in_range(0..=2)? {
            0 => {
                let alphabet: Vec<char> =
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect();
                let c = *u.choose(&alphabet)?;
                if c == chars[i] {
                    return Ok(());
                }
                chars[i] = c;
                chars.into_iter().collect()
            }
            1 => {
                chars.remove(i);
                chars.into_iter().collect()
            }
            _ => {
                chars.insert(i, 'A');
                chars.into_iter().collect()
            }
        };
        assert_eq!(key.check(&tampered), None, "tampered {handle} -> {tampered}");
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------ policy

/// A JSON document shaped more or less like a policy.
fn policy_json(u: &mut Unstructured<'_>, depth: u32) -> AResult<serde_json::Value> {
    use serde_json::{json, Value};
    Ok(match u.int_in_range(0..=8)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<i64>()?),
        2 => json!(string(u)?),
        3 if depth < 5 => {
            Value::Array((0..u.int_in_range(0..=3)?).map(|_| policy_json(u, depth + 1)).collect::<AResult<_>>()?)
        }
        _ if depth < 5 => {
            let mut map = serde_json::Map::new();
            for _ in 0..u.int_in_range(0..=4)? {
                let k = u.choose(&["Version", "Id", "Statement", "Sid", "Effect", "Principal", "Action", "x"])?;
                map.insert(k.to_string(), policy_json(u, depth + 1)?);
            }
            Value::Object(map)
        }
        _ => json!("Statement"),
    })
}

#[test]
fn policy_documents_of_any_shape_are_edited_or_refused_without_panics() {
    let arn = "arn:aws:sqs:us-east-1:000000000000:q";
    run(|u| {
        let stored = if u.ratio(1, 2)? { string(u)? } else { policy_json(u, 0)?.to_string() };
        let label = if u.ratio(3, 4)? { u.choose(&["l1", "l2", "Sid"])?.to_string() } else { string(u)? };
        let accounts: Vec<String> = (0..u.int_in_range(0..=2)?).map(|_| string(u)).collect::<AResult<_>>()?;
        let actions: Vec<String> = (0..u.int_in_range(0..=8)?)
            .map(|_| {
                if u.ratio(3, 4)? {
                    Ok(u.choose(&["*", "SendMessage", "PurgeQueue"])?.to_string())
                } else {
                    string(u)
                }
            })
            .collect::<AResult<_>>()?;
        let added = add_permission(Some(&stored), arn, &label, &accounts, &actions);
        let _ = remove_permission(Some(&stored), &label);
        // What was added can be removed again.
        if let Ok(doc) = added {
            assert!(serde_json::from_str::<serde_json::Value>(&doc).is_ok());
            let removed = remove_permission(Some(&doc), &label);
            assert!(removed.is_ok(), "{label:?} added to {stored:?} but not removable: {removed:?}");
        }
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------ store records

#[test]
fn message_meta_records_round_trip_and_arbitrary_bytes_never_panic() {
    run(|u| {
        let bytes: Vec<u8> = u.arbitrary()?;
        let (_, largest) = largest_allocation_during(|| MessageMeta::decode(&bytes));
        assert!(largest <= bounded(&bytes), "{largest} bytes allocated for a {}-byte meta", bytes.len());
        let meta = MessageMeta {
            id: u.arbitrary()?,
            sent_ms: u.arbitrary()?,
            first_receive_ms: u.arbitrary()?,
            visible_at_ms: u.arbitrary()?,
            receive_count: u.arbitrary()?,
            size: u.arbitrary()?,
            group: 0,
            last_receive_ms: u.arbitrary()?,
        };
        // Group names are at most 128 characters by SQS's rules, so at most 512 bytes.
        let group: String = string(u)?.chars().take(128).collect();
        let dedup: Option<[u8; 16]> = u.arbitrary()?;
        let encoded = meta.encode(&group, dedup.as_ref());
        let decoded = MessageMeta::decode(&encoded);
        if group.len() <= 255 {
            assert_eq!(decoded.ok(), Some((meta, group, dedup)));
        } else {
            // Truncated to 255 bytes: decodes (or is refused if the cut split a character), never panics.
            let _ = decoded;
        }
        Ok(())
    });
}

#[test]
fn body_records_round_trip_and_arbitrary_bytes_never_panic_nor_allocate_without_bound() {
    run(|u| {
        let bytes: Vec<u8> = u.arbitrary()?;
        let (_, largest) = largest_allocation_during(|| BodyRecord::decode(&bytes));
        assert!(largest <= bounded_serde(&bytes), "{largest} bytes allocated for a {}-byte body record", bytes.len());
        let record = BodyRecord {
            body: string(u)?,
            attributes: attributes(u)?,
            system_attributes: attributes(u)?,
            sender_id: string(u)?,
            group_id: if u.arbitrary()? { Some(string(u)?) } else { None },
            deduplication_id: if u.arbitrary()? { Some(string(u)?) } else { None },
            dead_letter_source_arn: if u.arbitrary()? { Some(string(u)?) } else { None },
            md5_of_body: None,
        };
        let encoded = record.encode();
        let decoded = BodyRecord::decode(&encoded).expect("an encoded record decodes");
        assert_eq!(decoded.md5_of_body, Some(record.body_md5()));
        assert_eq!(BodyRecord { md5_of_body: None, ..decoded }, record);
        // Any cut or flipped byte: an error or some record, never a panic or a huge allocation.
        let mut damaged = encoded.clone();
        if !damaged.is_empty() {
            let i = u.choose_index(damaged.len())?;
            damaged[i] ^= u.int_in_range(1..=255)?;
            damaged.truncate(u.int_in_range(0..=damaged.len())?);
        }
        let (_, largest) = largest_allocation_during(|| BodyRecord::decode(&damaged));
        assert!(largest <= bounded_serde(&damaged), "{largest} bytes allocated for a damaged record");
        Ok(())
    });
}

/// Length prefixes of 2^60 (and every other huge count) in each length-prefixed field of a body
/// record: refused without trying to allocate them.
#[test]
fn body_records_with_huge_length_prefixes_are_refused_without_allocating() {
    let record = BodyRecord {
        body: "b".into(),
        attributes: Attributes::new(),
        system_attributes: Attributes::new(),
        sender_id: "s".into(),
        group_id: Some("g".into()),
        deduplication_id: None,
        dead_letter_source_arn: None,
        md5_of_body: None,
    };
    let encoded = record.encode();
    for at in 0..encoded.len().saturating_sub(8) {
        for huge in [1u64 << 60, 1 << 40, u32::MAX as u64, u64::MAX] {
            let mut bytes = encoded.clone();
            bytes[at..at + 8].copy_from_slice(&huge.to_le_bytes());
            let (_, largest) = largest_allocation_during(|| BodyRecord::decode(&bytes));
            assert!(largest <= bounded_serde(&bytes), "{largest} bytes allocated with {huge} written at {at}");
        }
    }
}

#[test]
fn queue_records_and_dedup_entries_from_arbitrary_bytes_never_panic() {
    run(|u| {
        let bytes: Vec<u8> = u.arbitrary()?;
        let (_, largest) =
            largest_allocation_during(|| (QueueRecord::decode(&bytes).is_ok(), DedupEntry::decode(&bytes)));
        assert!(largest <= bounded_serde(&bytes));
        let entry = DedupEntry { message_id: u.arbitrary()?, seq: u.arbitrary()?, expires_ms: u.arbitrary()? };
        assert_eq!(DedupEntry::decode(&entry.encode()), Some(entry));
        Ok(())
    });
}
