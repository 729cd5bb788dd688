use std::sync::atomic::Ordering;

use super::open::LOG_EXTENSIONS;
use super::tables::{DOOMED, INFO};
use super::*;
use crate::embedded::{OpenOptions, Salvaged};

#[test]
fn embedded_backend_passes_conformance() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    crate::conformance::run_all(&|| Box::new(EmbeddedBackend::open(&path).unwrap()) as Box<dyn Backend>, true);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until the applier has committed every sealed layer to redb.
fn settle(backend: &EmbeddedBackend) {
    drop(backend.shared.wait_for_applier(backend.shared.layers(), |l| l.sealed.is_empty()));
}

/// A panic on the applier thread must not leave writers waiting for it forever.
#[test]
fn a_panicking_applier_fails_the_backend_and_wakes_its_waiters() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-panic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
    let (woke, woken) = std::sync::mpsc::channel();
    let shared = backend.shared.clone();
    // Not scoped: if the failure did not wake it, the test fails instead of hanging.
    std::thread::spawn(move || {
        // Waits for a condition the applier never brings about: only a failure ends it.
        drop(shared.wait_for_applier(shared.layers(), |_| false));
        let _ = woke.send(());
    });
    std::thread::sleep(Duration::from_millis(50));
    backend.shared.fail_on_panic(|| panic!("injected"));
    woken.recv_timeout(Duration::from_secs(5)).expect("the waiter was not woken");
    let refused = backend.apply(vec![message(1, 1)]).unwrap_err().to_string();
    assert!(refused.contains("applier panicked: injected"), "{refused}");
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A failure wakes every wait for the applier at once; an idle applier used to go on to its
/// clean-up and back, round and round (a core busy, commits to a redb in doubt).
#[test]
fn a_failed_backend_stops_its_applier() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-failed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
    backend.apply(vec![message(1, 1)]).unwrap();
    backend.shared.flush().unwrap();
    backend.shared.fail(&StoreError::Io("injected".into()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !backend.applier.lock().unwrap().as_ref().is_some_and(|a| a.is_finished()) {
        assert!(Instant::now() < deadline, "the applier still runs 10 s after the failure");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bound of a purge still being removed is reported, so recovery can start new seqs above
/// it; a finished purge, a deleted queue and an empty purge are not.
#[test]
fn purge_bounds_are_reported_until_their_records_are_removed() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-bounds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
    backend.apply((0..10).map(|seq| message(1, seq)).chain([message(2, 0)]).collect()).unwrap();
    backend.shared.flush().unwrap();
    let bounds = |b: &EmbeddedBackend| {
        let mut seen = Vec::new();
        b.scan_purge_bounds(&mut |q, below| seen.push((q, below))).unwrap();
        seen.sort();
        seen
    };
    // Logged, not yet applied: the applier has not started removing anything.
    backend
        .apply(vec![
            Op::PurgeMessages { queue: 1, below: 7 },
            Op::DeleteQueue { queue: 2 },
            Op::PurgeMessages { queue: 3, below: 0 },
        ])
        .unwrap();
    assert_eq!(bounds(&backend), vec![(1, 7)]);
    backend.shared.flush().unwrap();
    wait_until_clean(&backend);
    assert_eq!(bounds(&backend), vec![]);
    assert_eq!(raw_messages(&backend, 1), (3, 3));
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counts the records of `queue` physically in redb's message tables (doomed ones included).
fn raw_messages(backend: &EmbeddedBackend, queue: QueueId) -> (usize, usize) {
    let tx = backend.shared.db.begin_read().unwrap();
    let count = |t| tx.open_table(t).unwrap().range((queue, 0)..=(queue, Seq::MAX)).unwrap().count();
    (count(META), count(BODY))
}

fn wait_until_clean(backend: &EmbeddedBackend) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !backend.shared.doomed().is_empty() {
        assert!(Instant::now() < deadline, "doomed records were not removed within 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A purge or a queue deletion of many messages is hidden at once and removed a chunk per
/// transaction (one big transaction held every send back for as long), also after a restart.
#[test]
fn big_purges_and_queue_deletions_are_hidden_at_once_and_removed_in_chunks() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-doomed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    let n = 2 * CLEANUP_CHUNK as u64 + 10;
    let backend = EmbeddedBackend::open(&path).unwrap();
    for queue in [1, 2] {
        backend.apply((0..n).map(|seq| message(queue, seq)).collect()).unwrap();
    }
    // More key/value records than one chunk removes, the last of queue 2 followed by queue 3's.
    let kv = |queue: QueueId, i: usize| Op::PutKv { queue, key: format!("k{i:05}").into_bytes(), value: b"v".to_vec() };
    backend.apply((0..CLEANUP_CHUNK + 10).map(|i| kv(2, i)).chain([message(3, 0), kv(3, 0)]).collect()).unwrap();
    backend.shared.flush().unwrap();
    assert_eq!(raw_messages(&backend, 1), (n as usize, n as usize));

    backend.apply(vec![Op::PurgeMessages { queue: 1, below: n - 5 }, Op::DeleteQueue { queue: 2 }]).unwrap();
    let visible = |b: &EmbeddedBackend| {
        let mut seen = Vec::new();
        b.scan_meta(&mut |q, s, _| seen.push((q, s))).unwrap();
        seen
    };
    let expected: Vec<(QueueId, Seq)> = (n - 5..n).map(|s| (1, s)).chain([(3, 0)]).collect();
    assert_eq!(visible(&backend), expected, "hidden from scans before they are removed");
    assert_eq!(
        backend.get_bodies(1, &[0, n - 6, n - 5]).unwrap(),
        vec![None, None, Some(format!("body {}", n - 5).into_bytes())]
    );
    assert_eq!(backend.get_body(2, 7).unwrap(), None);
    let mut kvs = Vec::new();
    backend.scan_kv(&mut |q, _, _| kvs.push(q)).unwrap();
    assert_eq!(kvs, vec![3], "a deleted queue's key/value records are hidden too");

    wait_until_clean(&backend);
    assert_eq!(raw_messages(&backend, 1), (5, 5));
    assert_eq!(raw_messages(&backend, 2), (0, 0));
    let raw_kvs =
        |b: &EmbeddedBackend| b.shared.db.begin_read().unwrap().open_table(KV).unwrap().iter().unwrap().count();
    assert_eq!(raw_kvs(&backend), 1, "queue 2's removed in two chunks, queue 3's kept");
    // Queue 1 takes three chunks (two full ones), queue 2 as many.
    assert!(backend.shared.cleanup_chunks.load(Ordering::Relaxed) >= 6, "removed in chunks");

    // Doomed before a restart: still hidden after it, and removed by the reopened backend.
    backend.apply((n..2 * n).map(|seq| message(1, seq)).collect()).unwrap();
    backend.shared.flush().unwrap();
    backend.apply(vec![Op::PurgeMessages { queue: 1, below: 2 * n - 1 }]).unwrap();
    drop(backend);
    let backend = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(visible(&backend), vec![(1, 2 * n - 1), (3, 0)]);
    wait_until_clean(&backend);
    assert_eq!(raw_messages(&backend, 1), (1, 1));
    let tx = backend.shared.db.begin_read().unwrap();
    assert_eq!(tx.open_table(DOOMED).unwrap().iter().unwrap().count(), 0);
    drop(tx);
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store written by a newer sluice is refused before anything is replayed into it.
#[test]
fn a_store_in_a_newer_format_is_refused() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-format-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    drop(EmbeddedBackend::open(&path).unwrap());
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        assert_eq!(tx.open_table(INFO).unwrap().get("format").unwrap().map(|v| v.value()), Some(FORMAT));
        tx.open_table(INFO).unwrap().insert("format", FORMAT + 1).unwrap();
        tx.commit().unwrap();
    }
    let refused = EmbeddedBackend::open(&path).err().expect("a newer format must be refused").to_string();
    assert!(refused.contains("written by a newer sluice"), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn message(queue: QueueId, seq: Seq) -> Op {
    Op::PutMessage { queue, seq, meta: vec![1], body: format!("body {seq}").into_bytes() }
}

/// Changes live in the pending layer until `maintain` moves them to redb; readers see the same
/// state before and after, and a message sent and deleted in between never shows up.
#[test]
fn pending_changes_read_the_same_before_and_after_they_reach_redb() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-pending-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
    backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }, message(5, 1), message(5, 2)]).unwrap();
    backend.maintain().unwrap();
    assert!(!backend.shared.layers().active.is_empty(), "below every threshold: still pending");
    assert_eq!(backend.get_body(5, 1).unwrap(), Some(b"body 1".to_vec()));
    backend
        .apply(vec![Op::DeleteMessage { queue: 5, seq: 1 }, Op::PutMeta { queue: 5, seq: 2, meta: vec![7] }])
        .unwrap();
    let many: Vec<Op> = (10..10 + FLUSH_OPS as u64).map(|s| message(5, s)).collect();
    backend.apply(many).unwrap();
    backend.maintain().unwrap();
    assert!(backend.shared.layers().active.is_empty(), "sealed for the applier");
    settle(&backend);
    assert!(backend.shared.layers().sealed.is_empty(), "applied to redb");
    assert_eq!(backend.get_body(5, 2).unwrap(), Some(b"body 2".to_vec()));
    assert_eq!(backend.get_body(5, 10).unwrap(), Some(b"body 10".to_vec()));
    assert_eq!(backend.get_body(5, 1).unwrap(), None);
    backend.apply(vec![Op::DeleteMessage { queue: 5, seq: 10 }, message(5, 99_999)]).unwrap();
    // One batch read across both places: seq 11 from redb, 99999 pending, 1 gone.
    let bodies = backend.get_bodies(5, &[11, 99_999, 1]).unwrap();
    assert_eq!(bodies, vec![Some(b"body 11".to_vec()), Some(b"body 99999".to_vec()), None]);
    let mut seen = Vec::new();
    backend.scan_meta(&mut |q, s, m| seen.push((q, s, m.to_vec()))).unwrap();
    assert_eq!(seen.len(), 1 + (FLUSH_OPS - 1) + 1, "seq 2, 11..10+FLUSH_OPS and 99999; 1 and 10 deleted");
    assert_eq!(seen[0], (5, 2, vec![7]));
    assert_eq!(seen.last().unwrap().1, 99_999);
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An append writes its log record at once (a process crash keeps it) and is readable at once;
/// only the fdatasync waits, for the next apply or sync.
#[test]
fn appends_are_logged_and_visible_at_once_and_synced_by_the_next_apply_or_sync() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-append-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
    let state = |b: &EmbeddedBackend| {
        let log = b.shared.log.lock().unwrap();
        (log.wal.used(), log.unsynced, log.split.syncs)
    };
    let (empty, _, _) = state(&backend);
    backend.append(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }, message(5, 1)]).unwrap();
    let (used, unsynced, syncs) = state(&backend);
    assert!(used > empty && unsynced && syncs == 0, "written to the log, not synced: {used} {unsynced} {syncs}");
    assert_eq!(backend.get_body(5, 1).unwrap(), Some(b"body 1".to_vec()));
    backend.apply(vec![message(5, 2)]).unwrap();
    assert!(!state(&backend).1, "the durable apply covers the append");
    assert_eq!(state(&backend).2, 1);
    backend.sync().unwrap();
    assert_eq!(state(&backend).2, 1, "nothing unsynced: no fdatasync");
    backend.append(vec![Op::DeleteMessage { queue: 5, seq: 1 }]).unwrap();
    backend.sync().unwrap();
    assert_eq!((state(&backend).1, state(&backend).2), (false, 2));
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a crash leaves behind: records in the log that redb never committed durably. Written
/// straight into the log here (a crashed process cannot be simulated in-process: redb locks its
/// file); the SIGKILL tests in tests/crash and crates/sluice/tests cover the real thing.
#[test]
fn open_replays_the_log_and_a_clean_close_empties_it() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    let backend = EmbeddedBackend::open(&path).unwrap();
    backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }, message(5, 1), message(5, 2)]).unwrap();
    drop(backend);
    let (mut wal, records) = Wal::open(&path.with_extension("wal")).unwrap();
    assert!(records.is_empty(), "a clean close checkpoints and empties the log");
    wal.append(&[message(5, 3), Op::DeleteMessage { queue: 5, seq: 1 }]).unwrap();
    wal.append(&[Op::PutMeta { queue: 5, seq: 2, meta: vec![9] }, Op::PutMeta { queue: 5, seq: 1, meta: vec![9] }])
        .unwrap();
    wal.sync().unwrap();
    drop(wal);

    let backend = EmbeddedBackend::open(&path).unwrap();
    let mut seen = Vec::new();
    backend.scan_meta(&mut |q, s, m| seen.push((q, s, m.to_vec()))).unwrap();
    // seq 1 deleted (and not resurrected by the later PutMeta), seq 2 updated, seq 3 added.
    assert_eq!(seen, vec![(5, 2, vec![9]), (5, 3, vec![1])]);
    assert_eq!(backend.get_body(5, 3).unwrap(), Some(b"body 3".to_vec()));
    drop(backend);
    let (_, records) = Wal::open(&path.with_extension("wal")).unwrap();
    assert!(records.is_empty(), "replayed records are checkpointed at open");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A crash can leave records in both log files: the one a checkpoint was making redundant and
/// the one written meanwhile. They replay in epoch order, whatever the files are called.
#[test]
fn open_replays_both_logs_older_epoch_first() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-two-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    let backend = EmbeddedBackend::open(&path).unwrap();
    backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }]).unwrap();
    drop(backend);
    let (mut first, _) = Wal::open(&path.with_extension("wal")).unwrap();
    let (mut second, _) = Wal::open(&path.with_extension("wal2")).unwrap();
    // `.wal2` older, `.wal` newer: the opposite of the names' order.
    second.restart_after(first.epoch()).unwrap();
    first.restart_after(second.epoch()).unwrap();
    second.append(&[message(5, 7), message(5, 6)]).unwrap();
    first.append(&[Op::DeleteMessage { queue: 5, seq: 7 }, message(5, 8)]).unwrap();
    drop((first, second));

    let backend = EmbeddedBackend::open(&path).unwrap();
    let mut seen = Vec::new();
    backend.scan_meta(&mut |_, s, _| seen.push(s)).unwrap();
    assert_eq!(seen, vec![6, 8], "the delete in the newer log comes after the send in the older one");
    drop(backend);
    for ext in LOG_EXTENSIONS {
        let (_, records) = Wal::open(&path.with_extension(ext)).unwrap();
        assert!(records.is_empty(), "both logs are checkpointed at open ({ext})");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A full log makes the writer switch to the other file and the applier checkpoint the full
/// one in the background; everything stays readable throughout, and the file comes back.
#[test]
fn a_full_log_is_checkpointed_by_the_applier_while_writes_go_to_the_other_file() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-switch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    let backend = EmbeddedBackend::open(&path).unwrap();
    let epoch = |b: &EmbeddedBackend| b.shared.log.lock().unwrap().wal.epoch();
    let first_epoch = epoch(&backend);
    backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }]).unwrap();
    let big = vec![b'x'; 1 << 20];
    let mut seq = 0;
    while backend.shared.log.lock().unwrap().wal.used() < CHECKPOINT_BYTES {
        seq += 1;
        backend.apply(vec![Op::PutMessage { queue: 5, seq, meta: vec![1], body: big.clone() }]).unwrap();
    }
    backend.maintain().unwrap();
    assert!(epoch(&backend) > first_epoch, "new records go to the other file");
    assert!(backend.shared.layers().spare_log.is_none(), "the full file is with the applier");
    backend.apply(vec![Op::DeleteMessage { queue: 5, seq: 1 }, message(5, seq + 1)]).unwrap();
    assert_eq!(backend.get_body(5, 2).unwrap().map(|b| b.len()), Some(big.len()));
    settle(&backend);
    assert!(backend.shared.layers().spare_log.is_some(), "the checkpoint gave the file back");
    assert_eq!(backend.get_body(5, seq).unwrap().map(|b| b.len()), Some(big.len()));
    backend.shared.flush().unwrap();
    assert_eq!(backend.get_body(5, 1).unwrap().map(|b| b.len()), None, "the delete reached redb");
    assert_eq!(backend.get_body(5, seq + 1).unwrap(), Some(format!("body {}", seq + 1).into_bytes()));
    drop(backend);

    let backend = EmbeddedBackend::open(&path).unwrap();
    let mut seen = Vec::new();
    backend.scan_meta(&mut |_, s, _| seen.push(s)).unwrap();
    assert_eq!(seen, (2..=seq + 1).collect::<Vec<_>>());
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

fn count_messages(backend: &EmbeddedBackend) -> usize {
    let mut n = 0;
    backend.scan_meta(&mut |_, _, _| n += 1).unwrap();
    n
}

/// Issue 24, seen on main: after the first ENOSPC every write failed with "refuses writes until
/// restarted", freeing space did not help, and lazy writes (deletes) that failed were dropped after
/// their requests were answered. Now: a failed log write is a retryable `Full`, sends are refused
/// while less than the reserve is free, deletes still go to the preallocated log, lazy writes that
/// fail are retried, and the store resumes once space is back, without a restart.
#[tokio::test]
async fn a_full_disk_degrades_and_the_store_resumes_when_space_is_back() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    let backend = Arc::new(EmbeddedBackend::open(&path).unwrap());
    let store = crate::Store::new(backend.clone());
    store.commit(vec![message(1, 1), message(1, 2)]).await.unwrap();

    // A log write fails with ENOSPC: retryable, not fatal.
    backend.inject_enospc(1);
    let err = store.commit(vec![message(1, 3)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Full(_)), "{err}");
    assert!(store.degraded().is_some(), "an ENOSPC degrades the store at once");

    // While less than the reserve is free: sends refused before the log, deletes recorded.
    backend.set_free_space_override(Some(crate::space::RESERVE_BYTES / 2));
    assert!(store.degraded().unwrap().contains("kept for recovery"));
    assert!(matches!(store.commit(vec![message(1, 4)]).await, Err(StoreError::Full(_))));
    store.commit(vec![Op::DeleteMessage { queue: 1, seq: 1 }]).await.unwrap();

    // A lazy delete whose log write fails is kept and retried, and flagged meanwhile.
    backend.inject_enospc(1);
    store.commit_lazy(vec![Op::DeleteMessage { queue: 1, seq: 2 }]);
    for _ in 0..100 {
        if store.refuses_lazy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The retry (within RECHECK) records it: the injected failure was one write.
    for _ in 0..300 {
        if !store.refuses_lazy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!store.refuses_lazy(), "the retained lazy delete was recorded on retry");

    // Space back: within a RECHECK the store takes sends again, and nothing was lost.
    backend.set_free_space_override(Some(crate::space::RESERVE_BYTES * 4));
    assert_eq!(store.degraded(), None);
    store.commit(vec![message(1, 5)]).await.unwrap();
    store.close().await;
    drop(store);
    let mut seqs = Vec::new();
    backend.scan_meta(&mut |_, seq, _| seqs.push(seq)).unwrap();
    assert_eq!(seqs, vec![5], "both deletes recorded; the refused sends absent");
    drop(backend);
    // And after a restart.
    let reopened = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(count_messages(&reopened), 1);
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Degraded, the log may use its preallocated room but never grow, and the applier holds back
/// (redb's file must not grow) without stalling the writer; a close then leaves the logs for the
/// next start to replay.
#[test]
fn degraded_the_log_does_not_grow_and_a_close_keeps_the_log() {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-nogrow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.redb");
    let backend = EmbeddedBackend::open(&path).unwrap();
    backend.set_free_space_override(Some(0));
    assert!(backend.degraded().is_some());
    let body = vec![7u8; 1 << 20];
    let mut refused = None;
    for seq in 0..200 {
        let op = Op::PutMessage { queue: 1, seq, meta: vec![1], body: body.clone() };
        match backend.apply(vec![op]) {
            Ok(()) => backend.maintain().unwrap(),
            Err(e) => {
                refused = Some((seq, e));
                break;
            }
        }
    }
    let (seq, e) = refused.expect("the log never refused");
    assert!(matches!(e, StoreError::Full(_)), "{e}");
    assert!(seq > 30, "the preallocated room was used ({seq} records)");
    let wal_len = |ext: &str| std::fs::metadata(path.with_extension(ext)).unwrap().len();
    assert_eq!(wal_len(LOG_EXTENSIONS[0]).max(wal_len(LOG_EXTENSIONS[1])), crate::wal::PREALLOCATED);
    drop(backend);
    let reopened = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(count_messages(&reopened), seq as usize, "every accepted record replayed");
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 24: a deleted log or store file was silently re-created empty (its messages gone). The
/// manifest lists them: a missing one is refused, and nothing is created; salvage goes on without it.
#[test]
fn a_missing_store_file_is_refused_unless_salvaging() {
    for name in ["store.wal", "store.wal2", "store.redb"] {
        let dir = temp_dir(&format!("missing-{name}"));
        let path = dir.join("store.redb");
        let backend = EmbeddedBackend::open(&path).unwrap();
        backend.apply(vec![Op::PutQueue { queue: 1, record: b"q".to_vec() }]).unwrap();
        drop(backend);
        assert!(dir.join("store.manifest").exists());
        std::fs::remove_file(dir.join(name)).unwrap();
        let err = EmbeddedBackend::open(&path).err().expect("a missing file must be refused").to_string();
        assert!(err.contains(name) && err.contains("missing"), "{err}");
        assert!(!dir.join(name).exists(), "a refused open created {name}");
        let salvaged = EmbeddedBackend::open_with(&path, OpenOptions { salvage: true }).unwrap();
        assert_eq!(salvaged.salvaged(), &[Salvaged::MissingFile(dir.join(name))]);
        drop(salvaged);
        EmbeddedBackend::open(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A store from before manifests (all files there, no manifest) gets one; with a file missing it is
/// refused all the same.
#[test]
fn a_store_without_a_manifest_gets_one_when_complete() {
    let dir = temp_dir("no-manifest");
    let path = dir.join("store.redb");
    drop(EmbeddedBackend::open(&path).unwrap());
    std::fs::remove_file(dir.join("store.manifest")).unwrap();
    drop(EmbeddedBackend::open(&path).unwrap());
    assert!(dir.join("store.manifest").exists());
    std::fs::remove_file(dir.join("store.manifest")).unwrap();
    std::fs::remove_file(dir.join("store.redb")).unwrap();
    assert!(EmbeddedBackend::open(&path).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-embedded-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
