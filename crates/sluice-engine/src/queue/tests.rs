//! Index tests: timelines, receipts, retention, FIFO groups and fair queues.

use super::*;
use crate::attributes::QueueAttributes;

fn state(fifo: bool) -> QueueState {
    let record = QueueRecord {
        name: "q".into(),
        created_ms: 0,
        last_modified_ms: 0,
        attributes: QueueAttributes { fifo_queue: fifo, ..QueueAttributes::default() },
        tags: Default::default(),
    };
    QueueState::new(record, 1)
}

fn meta(sent: u64, visible_at: u64) -> MessageMeta {
    MessageMeta {
        id: [0; 16],
        sent_ms: sent,
        first_receive_ms: 0,
        visible_at_ms: visible_at,
        receive_count: 0,
        size: 10,
        group: 0,
        last_receive_ms: 0,
    }
}

fn grouped(s: &mut QueueState, seq: Seq, group: &str) {
    s.insert(seq, meta(0, 0), group, 0);
}

fn take(s: &mut QueueState, max: usize) -> Vec<Seq> {
    s.take(0, max, 30_000, 1000, None).unwrap().messages.into_iter().map(|(seq, _)| seq).collect()
}

#[test]
fn visibility_and_delay_share_one_timeline() {
    let mut s = state(false);
    s.insert(1, meta(0, 0), "", 0);
    s.insert(2, meta(0, 5_000), "", 0);
    assert_eq!(s.counts(), Counts { visible: 1, inflight: 0, delayed: 1, bytes: 20 });
    let got = s.take(0, 10, 30_000, 100, None).unwrap().messages;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.receive_count, 1);
    assert_eq!(s.counts().inflight, 1);
    s.tick(5_000);
    assert_eq!(s.counts(), Counts { visible: 1, inflight: 1, delayed: 0, bytes: 20 });
    s.tick(30_000);
    assert_eq!(s.counts().visible, 2);
    assert_eq!(s.next_due(), None);
}

#[test]
fn older_receipts_delete_on_standard_queues_and_inflight_limit_holds() {
    let mut s = state(false);
    s.insert(1, meta(0, 0), "", 0);
    s.take(0, 1, 0, 100, None).unwrap();
    s.tick(0);
    s.take(0, 1, 1000, 100, None).unwrap();
    // The first receive's handle deletes the message received again (getmoto/moto#4655, verified on AWS).
    assert!(s.delete(Receipt { queue: 0, seq: 1, receive: 1 }, 0, "h").unwrap());
    assert!(!s.delete(Receipt { queue: 0, seq: 1, receive: 2 }, 0, "h").unwrap());
    for seq in 10..15 {
        s.insert(seq, meta(0, 0), "", 0);
    }
    assert_eq!(s.take(0, 10, 1000, 3, None).unwrap().messages.len(), 3);
    assert!(matches!(s.take(0, 10, 1000, 3, None), Err(EngineError::OverLimit(_))));
}

#[test]
fn retention_removes_oldest_first() {
    let mut s = state(false);
    s.record.attributes.message_retention_period = 60;
    s.insert(1, meta(0, 0), "", 0);
    s.insert(2, meta(30_000, 0), "", 30_000);
    assert_eq!(s.tick(59_999).len(), 0);
    assert_eq!(s.tick(60_000).len(), 1);
    assert_eq!(s.counts().visible, 1);
    assert_eq!(s.tick(90_000).len(), 1);
    assert_eq!(s.counts(), Counts::default());
}

#[test]
fn fifo_group_is_blocked_while_a_message_is_in_flight() {
    let mut s = state(true);
    grouped(&mut s, 1, "a");
    grouped(&mut s, 2, "a");
    grouped(&mut s, 3, "b");
    // One receive of 1: the head of one group only.
    let first = take(&mut s, 1);
    assert_eq!(first.len(), 1);
    // Group of `first` is blocked; the other group is served.
    let second = take(&mut s, 10);
    let (a_first, rest) = if first == vec![1] { (true, vec![3]) } else { (false, vec![1, 2]) };
    assert_eq!(second, rest, "a_first={a_first}");
    assert!(take(&mut s, 10).is_empty(), "everything servable is in flight or blocked");
    // Deleting the in-flight head unblocks its group, in order.
    if a_first {
        assert!(s.delete(Receipt { queue: 0, seq: 1, receive: 1 }, 0, "h").unwrap());
        assert_eq!(take(&mut s, 10), vec![2]);
    }
}

#[test]
fn fifo_receive_returns_a_group_in_order_and_requeues_after_expiry() {
    let mut s = state(true);
    for seq in 1..=5 {
        grouped(&mut s, seq, "g");
    }
    assert_eq!(
        s.take(0, 3, 1_000, 1000, None).unwrap().messages.iter().map(|m| m.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(s.take(0, 10, 1_000, 1000, None).unwrap().messages.is_empty());
    s.tick(1_000);
    assert_eq!(
        s.take(1_000, 10, 1_000, 1000, None).unwrap().messages.iter().map(|m| m.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
}

#[test]
fn fair_queue_serves_quiet_groups_despite_a_noisy_one() {
    let mut s = state(false);
    for seq in 1..=10_000 {
        grouped(&mut s, seq, "noisy");
    }
    for (i, g) in ["q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9"].iter().enumerate() {
        grouped(&mut s, 20_000 + i as u64, g);
    }
    let first = take(&mut s, 10);
    let quiet = first.iter().filter(|s| **s >= 20_000).count();
    assert_eq!(quiet, 9, "every quiet group is served in the first receive: {first:?}");
}

#[test]
fn dead_letters_leave_after_max_receives() {
    let mut s = state(false);
    s.insert(1, meta(0, 0), "", 0);
    for round in 0..2u64 {
        let t = s.take(round * 10, 1, 0, 100, Some(2)).unwrap();
        assert_eq!(t.messages.len(), 1);
        s.tick(round * 10 + 1);
    }
    let t = s.take(100, 1, 0, 100, Some(2)).unwrap();
    assert!(t.messages.is_empty());
    assert_eq!(t.dead.len(), 1);
    assert_eq!(s.counts(), Counts::default());
}

/// Resident memory of this process, from /proc (0 where there is none).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1));
    kb.and_then(|kb| kb.parse::<u64>().ok()).map_or(0, |kb| kb * 1024)
}

/// Inserts `n` messages the way recovery does and prints RSS growth per message and the time taken.
/// A measurement, not a check; run one at a time (each in its own process, so memory freed by an
/// earlier run does not hide growth), in release mode:
/// `cargo test --release -p sluice-engine --lib -- --ignored --nocapture memory_per_queued_message_standard`
fn measure_memory(fifo: bool, groups: u64) {
    let n = 2_000_000u64;
    let names: Vec<String> = (0..groups).map(|g| format!("group-{g}")).collect();
    let before = rss_bytes();
    let started = std::time::Instant::now();
    let mut s = state(fifo);
    for seq in 1..=n {
        let mut m = meta(1_000, 0);
        m.id = [seq as u8; 16];
        m.size = 200;
        let group = if groups == 0 { "" } else { &names[(seq % groups) as usize] };
        s.insert(seq, m, group, 1_000);
    }
    let elapsed = started.elapsed();
    let after = rss_bytes();
    assert_eq!(s.counts().visible, n as usize);
    println!(
        "fifo={fifo} groups={groups} messages={n} rss_before_mib={:.1} rss_after_mib={:.1} bytes_per_message={:.1} insert_ms={} ns_per_insert={:.0}",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / n as f64,
        elapsed.as_millis(),
        elapsed.as_nanos() as f64 / n as f64,
    );
    // Receive everything (oldest first) and delete it, for a rough drain timing.
    let started = std::time::Instant::now();
    let mut drained = 0;
    loop {
        let t = s.take(2_000, 10, 30_000, usize::MAX, None).unwrap();
        if t.messages.is_empty() {
            break;
        }
        for (seq, m) in t.messages {
            assert!(s.delete(Receipt { queue: 0, seq, receive: m.receive_count }, 2_000, "h").unwrap());
            drained += 1;
        }
    }
    assert_eq!(drained, n);
    println!(
        "  drained by receive(10)+delete: total_ms={} ns_per_message={:.0}",
        started.elapsed().as_millis(),
        started.elapsed().as_nanos() as f64 / n as f64
    );
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture in release mode"]
fn memory_per_queued_message_standard() {
    measure_memory(false, 0);
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture in release mode"]
fn memory_per_queued_message_fifo_10k_groups() {
    measure_memory(true, 10_000);
}

#[test]
fn fifo_handles_expire_with_their_receive() {
    let mut s = state(true);
    grouped(&mut s, 1, "g");
    s.take(0, 1, 1000, 100, None).unwrap();
    let first = Receipt { queue: 0, seq: 1, receive: 1 };
    // In flight: the handle works.
    assert!(s.change_visibility(first, 500, 1000, "h1").is_ok());
    // Timed out: both calls answer AWS's "The receipt handle has expired." (LocalStack snapshot
    // test_fifo_delete_after_visibility_timeout; aws/aws-sdk-java#1628 for ChangeMessageVisibility).
    s.tick(1500);
    let expired = |e: EngineError| matches!(e, EngineError::InvalidParameterValue(m) if m.ends_with("Reason: The receipt handle has expired."));
    assert!(expired(s.change_visibility(first, 1500, 1000, "h1").unwrap_err()));
    assert!(expired(s.delete(first, 1500, "h1").unwrap_err()));
    // Received again: the first handle stays expired, the new one deletes.
    s.take(1500, 1, 1000, 100, None).unwrap();
    assert!(expired(s.delete(first, 1600, "h1").unwrap_err()));
    assert!(s.delete(Receipt { queue: 0, seq: 1, receive: 2 }, 1600, "h2").unwrap());
}
