//! The one worker loop every scenario runs: connect, then repeat the scenario's [`Step`] until the
//! run stops (or the step says there is no more work), count what each iteration did in the shared
//! [`Run`], time it, and reconnect after an error. A scenario only says what one iteration does.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Result, Sqs};
use crate::run::Run;

/// What one iteration did, for the loop to count.
#[derive(Default)]
pub struct Did {
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub recv: u64,
    /// HTTP requests made.
    pub reqs: u64,
    /// A receive came back empty (`empty_receives`).
    pub empty: bool,
    /// Record this iteration's duration as a request latency (while measuring).
    pub timed: bool,
    /// Sleep this long before the next iteration (after counting).
    pub pause: Duration,
}

/// What one worker of a scenario does per iteration.
pub trait Step: Send + 'static {
    /// Names the errors this step counts (`error (<what>): ...` on stderr).
    const WHAT: &'static str;

    /// How long to wait after an error before reconnecting.
    const ERROR_PAUSE: Duration = Duration::ZERO;

    /// One iteration on connection `c`: `Ok(None)` when there is no more work. `lat` collects
    /// latencies the step measures itself (e.g. send->receive from body timestamps).
    fn step(&mut self, c: &mut Sqs, run: &Run, lat: &mut Vec<u32>) -> impl Future<Output = Result<Option<Did>>> + Send;
}

/// Connects, retrying every 50 ms (counting each failure as a `connect` error) until it succeeds
/// or the run stops.
pub async fn connect_retry(run: &Run, auth: &str) -> Option<Sqs> {
    loop {
        if run.stopped() {
            return None;
        }
        match Sqs::connect(auth).await {
            Ok(c) => return Some(c),
            Err(e) => {
                run.error("connect", &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs `step` on one keep-alive connection until the run stops or the step has no more work;
/// returns the latencies (µs) measured while `run.measuring()`.
pub async fn worker<S: Step>(run: Arc<Run>, auth: String, mut step: S) -> Vec<u32> {
    let mut lat = Vec::new();
    let Some(mut c) = connect_retry(&run, &auth).await else {
        return lat;
    };
    while !run.stopped() {
        let t = Instant::now();
        match step.step(&mut c, &run, &mut lat).await {
            Ok(None) => break,
            Ok(Some(did)) => {
                if did.sent > 0 {
                    run.sent.fetch_add(did.sent, Relaxed);
                }
                if did.recv > 0 {
                    run.recv.fetch_add(did.recv, Relaxed);
                }
                run.reqs.fetch_add(did.reqs, Relaxed);
                if did.empty {
                    run.empty.fetch_add(1, Relaxed);
                }
                if did.timed && run.measuring() {
                    lat.push(t.elapsed().as_micros() as u32);
                }
                if !did.pause.is_zero() {
                    tokio::time::sleep(did.pause).await;
                }
            }
            Err(e) => {
                run.error(S::WHAT, &e);
                if !S::ERROR_PAUSE.is_zero() {
                    tokio::time::sleep(S::ERROR_PAUSE).await;
                }
                let Some(c2) = connect_retry(&run, &auth).await else {
                    break;
                };
                c = c2;
            }
        }
    }
    lat
}

/// Spawns `n` workers, `make(i)` giving worker `i` its step.
pub fn spawn_workers<S: Step>(
    n: usize,
    run: &Arc<Run>,
    auth: &str,
    mut make: impl FnMut(usize) -> S,
) -> Vec<tokio::task::JoinHandle<Vec<u32>>> {
    (0..n).map(|i| tokio::spawn(worker(run.clone(), auth.to_string(), make(i)))).collect()
}
