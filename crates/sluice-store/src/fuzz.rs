//! Property and fuzz tests (test builds only) of the write-ahead log's decoders: its bytes are
//! whatever the disk holds, so decoding arbitrary input must never panic and never allocate more
//! than a small multiple of what it read (a length prefix of 2^60 is an error, not an attempt);
//! whatever is encoded decodes to itself (issue 24, item 4). arbtest picks a new seed each run and
//! prints it when a property fails; each property has a bounded budget.

use sluice_fuzzkit::{largest_allocation_during, Result as AResult, Unstructured};

use crate::wal::{decode_ops, encode_ops, Wal, HEADER_LEN};
use crate::Op;

const BUDGET_MS: u64 = 500;

/// Runs `property` for [`BUDGET_MS`] (or `SLUICE_FUZZ_MS`, to fuzz longer by hand).
fn run(property: impl FnMut(&mut Unstructured<'_>) -> AResult<()>) {
    sluice_fuzzkit::run(BUDGET_MS, None, property);
}

#[global_allocator]
static ALLOCATOR: sluice_fuzzkit::LargestAllocation = sluice_fuzzkit::LargestAllocation;

fn bounded(input: usize) -> usize {
    4 * input + 64 * 1024
}

fn op(u: &mut Unstructured<'_>) -> AResult<Op> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Op::PutQueue { queue: u.arbitrary()?, record: u.arbitrary()? },
        1 => Op::DeleteQueue { queue: u.arbitrary()? },
        2 => Op::PutMessage { queue: u.arbitrary()?, seq: u.arbitrary()?, meta: u.arbitrary()?, body: u.arbitrary()? },
        3 => Op::PutMeta { queue: u.arbitrary()?, seq: u.arbitrary()?, meta: u.arbitrary()? },
        4 => Op::DeleteMessage { queue: u.arbitrary()?, seq: u.arbitrary()? },
        5 => Op::PurgeMessages { queue: u.arbitrary()?, below: u.arbitrary()? },
        6 => Op::PutKv { queue: u.arbitrary()?, key: u.arbitrary()?, value: u.arbitrary()? },
        _ => Op::DeleteKv { queue: u.arbitrary()?, key: u.arbitrary()? },
    })
}

#[test]
fn log_payloads_round_trip_and_arbitrary_bytes_never_panic_nor_allocate_without_bound() {
    run(|u| {
        let bytes: Vec<u8> = u.arbitrary()?;
        let (_, largest) = largest_allocation_during(|| decode_ops(&bytes));
        assert!(largest <= bounded(bytes.len()), "{largest} bytes allocated for a {}-byte payload", bytes.len());
        let ops: Vec<Op> = (0..u.int_in_range(0..=6)?).map(|_| op(u)).collect::<AResult<_>>()?;
        let mut encoded = Vec::new();
        encode_ops(&ops, &mut encoded);
        assert_eq!(decode_ops(&encoded).ok(), Some(ops));
        // A huge count or length written anywhere: an error (or other ops), never a huge allocation.
        if encoded.len() >= 4 {
            let at = u.int_in_range(0..=encoded.len() - 4)?;
            let huge: u32 = *u.choose(&[u32::MAX, 1 << 31, 1 << 28, 0x0fff_ffff])?;
            encoded[at..at + 4].copy_from_slice(&huge.to_le_bytes());
            let (_, largest) = largest_allocation_during(|| decode_ops(&encoded));
            assert!(largest <= bounded(encoded.len()), "{largest} bytes allocated with {huge} at {at}");
        }
        Ok(())
    });
}

/// A log file whose records after a valid header are arbitrary bytes (damage, a foreign file,
/// stale records): opening it never panics nor allocates beyond the file's size.
#[test]
fn log_files_with_arbitrary_records_open_without_panics() {
    let dir = std::env::temp_dir().join(format!("sluice-wal-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sluice.wal");
    // A real log, for its header; its size is kept small by truncating after the header.
    let (wal, _) = Wal::open(&path).unwrap();
    drop(wal);
    let header = std::fs::read(&path).unwrap()[..HEADER_LEN as usize].to_vec();
    run(|u| {
        let mut file = header.clone();
        if u.ratio(1, 8)? {
            let i = u.choose_index(32)?;
            file[i] ^= 0x40;
        }
        // Records: a plausible head (length, CRC) with arbitrary payload, or arbitrary bytes.
        for _ in 0..u.int_in_range(0..=4)? {
            let payload: Vec<u8> = u.arbitrary()?;
            let len: u32 = if u.ratio(3, 4)? { payload.len() as u32 } else { u.arbitrary()? };
            file.extend_from_slice(&len.to_le_bytes());
            file.extend_from_slice(&u.arbitrary::<u32>()?.to_le_bytes());
            file.extend_from_slice(&payload);
        }
        std::fs::write(&path, &file).unwrap();
        let (_, largest) = largest_allocation_during(|| Wal::open(&path).map(|(_, records)| records.len()));
        assert!(largest <= bounded(file.len()) + (1 << 20), "{largest} bytes allocated opening {} bytes", file.len());
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
}
