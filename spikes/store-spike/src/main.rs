//! store-spike: measure redb vs fjall vs SQLite for sluice's message store.
//!
//! Model: two tables, `meta` (48-byte record) and `body` (200-byte body), keyed by
//! (queue_id u64 BE, seq u64 BE). A single writer does group commit: every
//! `Store::commit` call is ONE transaction/batch followed by an fsync.
//!
//! Usage (from spikes/store-spike):
//!   CARGO_TARGET_DIR=/work/spike-target cargo run --release -- all \
//!       [--engines redb,fjall,sqlite] [--reps 3] [--dir /work/spike-data]
//!   (`child` is the internal sub-command used to measure recovery in a fresh process;
//!    `fsynccheck --engine E` does 100 single-insert commits, to run under strace.)
//!
//! Per engine and repetition it measures: insert msg/s at commit sizes 1/10/100/1000
//! (2000/2000/1000/200 commits),
//! delete msg/s at commit sizes 100/1000, a mixed steady state (500 inserts + 500
//! deletes per commit), building a 1M-message store (10 queues x 100k, 10k per commit),
//! its on-disk size, and then in a new process: open time, full `meta` scan time,
//! random body point reads/s and a one-commit purge of a 100k-message queue.
//! Prints every sample, then a markdown table of medians.

mod fjall_store;
mod redb_store;
mod sqlite_store;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use store::{Op, Res, Store};

const META_LEN: usize = 48;
const BODY_LEN: usize = 200;
const BIG_QUEUES: u64 = 10;
const BIG_PER_QUEUE: u64 = 100_000;
const BIG_BATCH: u64 = 10_000;
const READS: u64 = 200_000;

fn open(engine: &str, dir: &Path) -> Res<Box<dyn Store>> {
    Ok(match engine {
        "redb" => Box::new(redb_store::RedbStore::open(dir)?),
        "fjall" => Box::new(fjall_store::FjallStore::open(dir)?),
        "sqlite" => Box::new(sqlite_store::SqliteStore::open(dir)?),
        e => return Err(format!("unknown engine {e}").into()),
    })
}

/// Cheap deterministic PRNG (xorshift64*), so no `rand` dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
}

/// Pool of alphanumeric 200-byte bodies (like text/base64 payloads).
fn body_pool() -> Vec<Vec<u8>> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = Rng(0x9E3779B97F4A7C15);
    (0..1024)
        .map(|_| (0..BODY_LEN).map(|_| ALNUM[(rng.next() % 62) as usize]).collect())
        .collect()
}

/// 48-byte meta record; bytes 0..8 = seq (the field the recovery scan sums).
fn meta_rec(seq: u64) -> [u8; META_LEN] {
    let mut m = [0u8; META_LEN];
    m[..8].copy_from_slice(&seq.to_be_bytes()); // sent timestamp stand-in
    m[8..16].copy_from_slice(&(seq + 30_000).to_be_bytes()); // visible_at
    m[16..20].copy_from_slice(&0u32.to_be_bytes()); // receive count
    m[20..24].copy_from_slice(&(BODY_LEN as u32).to_be_bytes());
    for (i, b) in m[24..].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(i as u8); // md5/attrs stand-in
    }
    m
}

/// Commit `commits` batches of `per_commit` inserts into queue `q` starting at `seq0`.
/// Returns time spent inside `commit` only.
fn insert_run(s: &mut dyn Store, bodies: &[Vec<u8>], q: u64, seq0: u64, per_commit: u64, commits: u64) -> Res<Duration> {
    let mut spent = Duration::ZERO;
    let mut seq = seq0;
    for _ in 0..commits {
        let metas: Vec<_> = (seq..seq + per_commit).map(meta_rec).collect();
        let ops: Vec<Op> = (0..per_commit)
            .map(|i| Op::Insert { q, seq: seq + i, meta: &metas[i as usize], body: &bodies[((seq + i) % 1024) as usize] })
            .collect();
        let t = Instant::now();
        s.commit(&ops)?;
        spent += t.elapsed();
        seq += per_commit;
    }
    Ok(spent)
}

fn delete_run(s: &mut dyn Store, q: u64, seq0: u64, per_commit: u64, commits: u64) -> Res<Duration> {
    let mut spent = Duration::ZERO;
    for c in 0..commits {
        let base = seq0 + c * per_commit;
        let ops: Vec<Op> = (base..base + per_commit).map(|seq| Op::Delete { q, seq }).collect();
        let t = Instant::now();
        s.commit(&ops)?;
        spent += t.elapsed();
    }
    Ok(spent)
}

fn fresh_dir(root: &Path, name: &str) -> Res<PathBuf> {
    let d = root.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d)?;
    }
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let md = match e.metadata() { Ok(m) => m, Err(_) => continue };
            total += if md.is_dir() { dir_size(&e.path()) } else { md.len() };
        }
    }
    total
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// One repetition of every measurement for one engine. Returns (metric, value).
fn run_engine(engine: &str, root: &Path, bodies: &[Vec<u8>]) -> Res<Vec<(String, f64)>> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let rec = |k: &str, v: f64, out: &mut Vec<(String, f64)>| {
        println!("  {engine:6} {k:28} {v:>12.1}");
        out.push((k.to_string(), v));
    };

    // 1. Inserts at different group-commit sizes (each commit = one fsync).
    for (bs, commits) in [(1u64, 2000u64), (10, 2000), (100, 1000), (1000, 200)] {
        let dir = fresh_dir(root, &format!("{engine}-ins"))?;
        let mut s = open(engine, &dir)?;
        let d = insert_run(s.as_mut(), bodies, 1, 0, bs, commits)?;
        rec(&format!("insert msg/s (batch {bs})"), rate(bs * commits, d), &mut out);
        if bs == 1000 {
            // Meta updates (receive: bump count / visibility), 1000 per commit.
            let mut spent = Duration::ZERO;
            for c in 0..100u64 {
                let metas: Vec<_> = (c * 1000..c * 1000 + 1000).map(|seq| { let mut m = meta_rec(seq); m[16..20].copy_from_slice(&1u32.to_be_bytes()); m }).collect();
                let ops: Vec<Op> = (0..1000u64).map(|i| Op::UpdateMeta { q: 1, seq: c * 1000 + i, meta: &metas[i as usize] }).collect();
                let t = Instant::now();
                s.commit(&ops)?;
                spent += t.elapsed();
            }
            rec("update meta msg/s (batch 1000)", rate(100_000, spent), &mut out);
            // 2. Deletes of those 200k messages, oldest first.
            let d = delete_run(s.as_mut(), 1, 0, 100, 1000)?;
            rec("delete msg/s (batch 100)", rate(100_000, d), &mut out);
            let d = delete_run(s.as_mut(), 1, 100_000, 1000, 100)?;
            rec("delete msg/s (batch 1000)", rate(100_000, d), &mut out);
            let (n, _) = s.scan_meta()?;
            assert_eq!(n, 0, "{engine}: deletes left records behind");
        }
    }

    // 3. Mixed steady state: 100k backlog, then per commit 500 inserts + 500 deletes of oldest.
    {
        let dir = fresh_dir(root, &format!("{engine}-mixed"))?;
        let mut s = open(engine, &dir)?;
        insert_run(s.as_mut(), bodies, 1, 0, 10_000, 10)?;
        let (mut next, mut oldest) = (100_000u64, 0u64);
        let mut spent = Duration::ZERO;
        let commits = 200u64;
        for _ in 0..commits {
            let metas: Vec<_> = (next..next + 500).map(meta_rec).collect();
            let mut ops: Vec<Op> = (0..500u64)
                .map(|i| Op::Insert { q: 1, seq: next + i, meta: &metas[i as usize], body: &bodies[((next + i) % 1024) as usize] })
                .collect();
            ops.extend((oldest..oldest + 500).map(|seq| Op::Delete { q: 1, seq }));
            let t = Instant::now();
            s.commit(&ops)?;
            spent += t.elapsed();
            next += 500;
            oldest += 500;
        }
        rec("mixed inserts/s (+ = deletes)", rate(500 * commits, spent), &mut out);
        rec("mixed commits/s (1000 ops)", rate(commits, spent), &mut out);
        let (n, _) = s.scan_meta()?;
        assert_eq!(n, 100_000);
    }

    // 4./5. 1M messages, then recovery + point reads in a fresh process.
    {
        let dir = fresh_dir(root, &format!("{engine}-big"))?;
        let t = Instant::now();
        {
            let mut s = open(engine, &dir)?;
            let mut seq = 0u64;
            while seq < BIG_PER_QUEUE {
                let per_q = BIG_BATCH / BIG_QUEUES;
                let metas: Vec<_> = (seq..seq + per_q).map(meta_rec).collect();
                let mut ops = Vec::with_capacity(BIG_BATCH as usize);
                for q in 0..BIG_QUEUES {
                    for i in 0..per_q {
                        ops.push(Op::Insert { q, seq: seq + i, meta: &metas[i as usize], body: &bodies[((seq + i + q) % 1024) as usize] });
                    }
                }
                s.commit(&ops)?;
                seq += per_q;
            }
        } // close (drop) the store
        rec("build 1M msg/s (10k/commit)", rate(BIG_QUEUES * BIG_PER_QUEUE, t.elapsed()), &mut out);
        rec("disk MiB (1M msgs)", dir_size(&dir) as f64 / (1 << 20) as f64, &mut out);

        let exe = std::env::current_exe()?;
        let o = std::process::Command::new(exe)
            .args(["child", "--engine", engine, "--dir"])
            .arg(&dir)
            .output()?;
        if !o.status.success() {
            return Err(format!("child failed: {}", String::from_utf8_lossy(&o.stderr)).into());
        }
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some((k, v)) = line.strip_prefix("RESULT ").and_then(|l| l.split_once('=')) {
                rec(k, v.parse()?, &mut out);
            }
        }
        rec("disk MiB after reopen+purge", dir_size(&dir) as f64 / (1 << 20) as f64, &mut out);
    }
    Ok(out)
}

/// Runs in a new process: open, scan meta, random point reads, purge one queue.
fn child(engine: &str, dir: &Path) -> Res<()> {
    let t0 = Instant::now();
    let mut s = open(engine, dir)?;
    let t_open = t0.elapsed();
    let (n, sum) = s.scan_meta()?;
    let t_scan = t0.elapsed() - t_open;
    let expect_sum = BIG_QUEUES * (BIG_PER_QUEUE * (BIG_PER_QUEUE - 1) / 2);
    assert_eq!((n, sum), (BIG_QUEUES * BIG_PER_QUEUE, expect_sum), "{engine}: scan mismatch");

    let mut rng = Rng(42);
    let t = Instant::now();
    for _ in 0..READS {
        let (q, seq) = (rng.next() % BIG_QUEUES, rng.next() % BIG_PER_QUEUE);
        let b = s.get_body(q, seq)?.expect("body missing");
        assert_eq!(b.len(), BODY_LEN);
    }
    let reads_per_s = rate(READS, t.elapsed());

    let t = Instant::now();
    let purged = s.purge_queue(0)?;
    let t_purge = t.elapsed();
    assert_eq!(purged, BIG_PER_QUEUE);
    assert!(s.get_body(0, 5)?.is_none());
    assert_eq!(s.scan_meta()?.0, (BIG_QUEUES - 1) * BIG_PER_QUEUE);

    println!("RESULT open ms (1M msgs)={:.1}", t_open.as_secs_f64() * 1e3);
    println!("RESULT scan meta ms (1M)={:.1}", t_scan.as_secs_f64() * 1e3);
    println!("RESULT recovery ms (open+scan)={:.1}", (t_open + t_scan).as_secs_f64() * 1e3);
    println!("RESULT point reads/s (random)={reads_per_s:.1}");
    println!("RESULT purge 100k-msg queue ms={:.1}", t_purge.as_secs_f64() * 1e3);
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: &str| -> String {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
    };
    match args.first().map(String::as_str) {
        Some("fsynccheck") => {
            // Run under `strace -f -c -e trace=fsync,fdatasync` to confirm one sync per commit.
            let dir = fresh_dir(Path::new(&opt("--dir", "/work/spike-data")), "fsynccheck")?;
            let mut s = open(&opt("--engine", ""), &dir)?;
            insert_run(s.as_mut(), &body_pool(), 1, 0, 1, 100)?;
            Ok(())
        }
        Some("child") => child(&opt("--engine", ""), Path::new(&opt("--dir", ""))),
        Some("all") => {
            let engines = opt("--engines", "redb,fjall,sqlite");
            let engines: Vec<&str> = engines.split(',').collect();
            let reps: usize = opt("--reps", "3").parse()?;
            let root = PathBuf::from(opt("--dir", "/work/spike-data"));
            std::fs::create_dir_all(&root)?;
            let bodies = body_pool();
            // results[metric][engine] = samples
            let mut results: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
            let mut order: Vec<String> = Vec::new();
            for rep in 0..reps {
                for e in &engines {
                    println!("== rep {} / {reps}: {e}", rep + 1);
                    for (k, v) in run_engine(e, &root, &bodies)? {
                        if !order.contains(&k) {
                            order.push(k.clone());
                        }
                        results.entry(k).or_default().entry(e.to_string()).or_default().push(v);
                    }
                    let _ = std::fs::remove_dir_all(root.join(format!("{e}-big")));
                }
            }
            println!("\n| metric (median of {reps}) | {} |", engines.join(" | "));
            println!("|---|{}", "---:|".repeat(engines.len()));
            for k in &order {
                let cells: Vec<String> = engines
                    .iter()
                    .map(|e| {
                        let mut v = results[k].get(*e).cloned().unwrap_or_default();
                        if v.is_empty() { "-".into() } else { format!("{:.1}", median(&mut v)) }
                    })
                    .collect();
                println!("| {k} | {} |", cells.join(" | "));
            }
            Ok(())
        }
        _ => {
            eprintln!("usage: store-spike all [--engines redb,fjall,sqlite] [--reps 3] [--dir DIR]");
            std::process::exit(2);
        }
    }
}
