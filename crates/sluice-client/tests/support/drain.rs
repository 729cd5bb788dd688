//! What the drain scenarios (`drain_postgres`, `drain_https`, `drain_mongo`) share: the burst they
//! send, the `sluice drain` process (killed when the test ends, however it ends), the wait for the
//! drain's progress, and the reading of its log.
//!
//! Waits are judged by progress, not by a deadline: a loaded 2-core machine can take several
//! times as long as an idle one, and a fixed limit failed there while the drain was working. A wait
//! fails only when nothing moved for [`STALL`].

use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sluice_client::{OutgoingMessage, Producer, ProducerConfig};

/// How long a wait goes on without progress before it fails. After the drain is `kill -9`ed, the
/// messages it had received stay in flight for its visibility timeout (5 s in these tests), and
/// the new one has to start: well under this.
pub const STALL: Duration = Duration::from_secs(60);

/// A number from the environment (the scenario's knobs), or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The seed burst: `records` operation records (each with a fresh ObjectId `_id`), then 5% of
/// them sent again ("producer retries"), the second half shuffled. Returns the bodies and the
/// number of duplicates.
pub fn burst(records: usize) -> (Vec<String>, usize) {
    let mut bodies: Vec<String> = (0..records)
        .map(|i| {
            serde_json::json!({
                "_id": sluice_client::object_id_hex(),
                "user": format!("user-{}", i % 997),
                "op": (["login", "update", "delete", "export"][i % 4]),
                "seq": i,
                "at": 1_700_000_000_000u64 + i as u64,
            })
            .to_string()
        })
        .collect();
    let dups = records / 20;
    for i in 0..dups {
        let copy = bodies[(i * 7919) % records].clone(); // the same record sent again later
        bodies.push(copy);
    }
    fastrand::shuffle(&mut bodies[records / 2..]);
    (bodies, dups)
}

/// Sends `bodies` to `url` as fast as the library's producer goes (16 batches in flight); returns
/// how long it took.
pub async fn produce(client: aws_sdk_sqs::Client, url: String, bodies: Vec<String>) -> Duration {
    let t0 = Instant::now();
    let producer = Producer::with_config(client, url, ProducerConfig { max_in_flight: 16, ..Default::default() });
    let mut tickets = Vec::with_capacity(bodies.len());
    for b in bodies {
        tickets.push(producer.enqueue(OutgoingMessage::new(b)).await.expect("enqueue"));
    }
    for t in tickets {
        t.wait().await.expect("send");
    }
    producer.close().await;
    t0.elapsed()
}

/// A running `sluice drain`. Dropping it kills the process (SIGKILL) and reaps it, so a test that
/// fails or panics leaves no drain behind.
pub struct Drain {
    child: Child,
}

impl Drain {
    /// Starts `cmd` with stdout piped (the summary line) and stderr appended to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Drain {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("open the drain log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sluice drain");
        Drain { child }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, and wait for it to be gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the drain");
        self.child.wait().expect("reap the drain");
    }

    /// SIGTERM, and its exit status (it must exit within 30 s).
    pub fn terminate(&mut self) -> ExitStatus {
        let st = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(st.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for the drain") {
                return s;
            }
            assert!(Instant::now() < deadline, "drain did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it printed on stdout (its summary line), once it has exited.
    pub fn summary(&mut self) -> String {
        let Some(stdout) = self.child.stdout.take() else { return String::new() };
        BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>().join(" ")
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Fails a wait that stopped making progress: feed it the state at each poll (rows written, queue
/// depth…); it panics when the state has not changed for [`STALL`].
pub struct Progress {
    last: Option<String>,
    since: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { last: None, since: Instant::now() }
    }

    pub fn check(&mut self, state: impl Debug, log: &Path) {
        let now = format!("{state:?}");
        if self.last.as_deref() != Some(now.as_str()) {
            self.last = Some(now);
            self.since = Instant::now();
        }
        let at = self.last.as_deref().unwrap_or_default();
        assert!(self.since.elapsed() < STALL, "no progress for {STALL:?}: stuck at {at}; log {}", log.display());
    }
}

/// The highest rate in the drain's progress lines (`…s: N rec/s…`).
pub fn progress_max_rate(log: &Path) -> f64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split("s:").nth(1)?.split("rec/s").next()?.trim().parse::<f64>().ok())
        .fold(0.0, f64::max)
}
