//! HTTP(S) deliveries to their end: the retry schedule (AWS's `healthyRetryPolicy`), the persisted
//! [`PendingDelivery`] record, and the task that runs one delivery (POST, back off, retry,
//! dead-letter).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_engine::message::SendMessage;
use sluice_engine::{Engine, EngineError};
use sluice_store::{Namespace, Op};

use super::http::{post, HttpClient};
use super::sqs::send_to_queue;
use crate::records::pending_key;

/// The HTTP retry schedule (AWS's `healthyRetryPolicy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub num_retries: u32,
    pub num_no_delay_retries: u32,
    pub num_min_delay_retries: u32,
    pub min_delay: f64,
    pub max_delay: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // AWS's default HTTP/S delivery policy.
        RetryPolicy {
            num_retries: 3,
            num_no_delay_retries: 0,
            num_min_delay_retries: 0,
            min_delay: 20.0,
            max_delay: 20.0,
        }
    }
}

impl RetryPolicy {
    /// From a subscription DeliveryPolicy (`{"healthyRetryPolicy": {...}}`) or a topic's
    /// (`{"http": {"defaultHealthyRetryPolicy": {...}}}`).
    pub fn from_json(v: &serde_json::Value) -> Option<RetryPolicy> {
        let p =
            v.get("healthyRetryPolicy").or_else(|| v.get("http").and_then(|h| h.get("defaultHealthyRetryPolicy")))?;
        let d = RetryPolicy::default();
        let num = |k: &str, def: u32| p.get(k).and_then(|x| x.as_u64()).map(|x| x.min(100) as u32).unwrap_or(def);
        let secs = |k: &str, def: f64| p.get(k).and_then(|x| x.as_f64()).map(|x| x.clamp(0.0, 3600.0)).unwrap_or(def);
        let min_delay = secs("minDelayTarget", d.min_delay);
        Some(RetryPolicy {
            num_retries: num("numRetries", d.num_retries),
            num_no_delay_retries: num("numNoDelayRetries", 0),
            num_min_delay_retries: num("numMinDelayRetries", 0),
            min_delay,
            max_delay: secs("maxDelayTarget", d.max_delay).max(min_delay),
        })
    }

    /// Delay before retry `n` (1-based): none, then the minimum, then doubling up to the maximum.
    pub fn delay(&self, n: u32) -> Duration {
        if n <= self.num_no_delay_retries {
            return Duration::ZERO;
        }
        let k = n - self.num_no_delay_retries;
        let secs = if k <= self.num_min_delay_retries {
            self.min_delay
        } else {
            let step = (k - self.num_min_delay_retries - 1).min(30);
            (self.min_delay.max(0.001) * 2f64.powi(step as i32)).min(self.max_delay)
        };
        Duration::from_secs_f64(secs)
    }
}

/// One HTTP(S) delivery not yet done (a Notification or a SubscriptionConfirmation), as persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingDelivery {
    pub id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub policy: RetryPolicy,
    /// Where an undeliverable message goes (an SQS queue ARN).
    pub dead_letter_arn: Option<String>,
    pub sub_arn: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Time of the next attempt (ms since the epoch, the engine's clock).
    pub next_at_ms: u64,
}

impl PendingDelivery {
    pub fn new(
        url: String,
        headers: Vec<(String, String)>,
        body: String,
        policy: RetryPolicy,
        dead_letter_arn: Option<String>,
        sub_arn: String,
        now_ms: u64,
    ) -> PendingDelivery {
        PendingDelivery {
            id: uuid::Uuid::new_v4().simple().to_string(),
            url,
            headers,
            body,
            policy,
            dead_letter_arn,
            sub_arn,
            attempts: 0,
            next_at_ms: now_ms,
        }
    }

    /// The op that stores this record.
    pub fn put_op(&self) -> Op {
        Namespace::Sns.put(pending_key(&self.id), serde_json::to_vec(self).unwrap_or_default())
    }

    fn delete_op(&self) -> Op {
        Namespace::Sns.delete(pending_key(&self.id))
    }
}

/// Runs one pending delivery to its end: waits for its next attempt, POSTs, and after a failure
/// records the attempt and schedules the next per the retry policy; after the last failure the body
/// goes to the dead-letter queue if there is one. The record is deleted once delivered or
/// dead-lettered, or when `wanted` says its subscription is gone (checked before each attempt).
/// Record updates are lazy writes: a crash may repeat an attempt, never lose the delivery.
pub async fn run_pending(
    client: HttpClient,
    engine: Arc<Engine>,
    mut job: PendingDelivery,
    wanted: impl Fn(&str) -> bool,
) {
    let store = engine.store().clone();
    let clock = engine.shared_clock();
    loop {
        let now = clock.now_ms();
        if job.next_at_ms > now {
            tokio::time::sleep(Duration::from_millis(job.next_at_ms - now)).await;
        }
        if !wanted(&job.sub_arn) {
            tracing::debug!(subscription = %job.sub_arn, "subscription gone; pending SNS delivery dropped");
            store.commit_lazy(vec![job.delete_op()]);
            return;
        }
        let result = post(&client, &job.url, &job.headers, job.body.clone()).await;
        job.attempts += 1;
        let error = match result {
            Ok(_) => {
                store.commit_lazy(vec![job.delete_op()]);
                return;
            }
            Err(e) => e,
        };
        tracing::debug!(subscription = %job.sub_arn, attempt = job.attempts, error = %error, "SNS HTTP delivery failed");
        if job.attempts <= job.policy.num_retries {
            let delay = job.policy.delay(job.attempts);
            job.next_at_ms = clock.now_ms() + delay.as_millis() as u64;
            store.commit_lazy(vec![job.put_op()]);
            continue;
        }
        tracing::warn!(subscription = %job.sub_arn, attempts = job.attempts, error = %error, "SNS HTTP delivery gave up");
        if let Some(dlq) = &job.dead_letter_arn {
            let msg = SendMessage { body: job.body.clone(), ..Default::default() };
            if let Err(e) = send_to_queue(&engine, dlq, msg, "sns").await {
                tracing::warn!(subscription = %job.sub_arn, dlq, error = %e, "SNS dead-letter delivery failed");
                if matches!(e, EngineError::Internal(_) | EngineError::Unavailable(_)) {
                    // Storage trouble (a full disk included): keep the record; the delivery resumes at the next start.
                    return;
                }
            }
        }
        store.commit_lazy(vec![job.delete_op()]);
        return;
    }
}

#[cfg(test)]
mod tests {
    use sluice_engine::clock::{Clock, ManualClock};

    use super::*;
    use crate::delivery::http_client;
    use crate::records::PENDING_PREFIX;
    use crate::test_support::*;

    fn recorded(engine: &Engine) -> Vec<PendingDelivery> {
        let mut out = Vec::new();
        engine
            .store()
            .scan_namespace(Namespace::Sns, &mut |key, value| {
                if key.starts_with(PENDING_PREFIX.as_bytes()) {
                    out.push(serde_json::from_slice(value).unwrap());
                }
            })
            .unwrap();
        out
    }

    #[tokio::test]
    async fn the_retry_schedule_follows_the_engine_clock() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let engine = engine_on(clock.clone());
        // A port nobody listens on: every attempt fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let policy = RetryPolicy {
            num_retries: 1,
            num_no_delay_retries: 0,
            num_min_delay_retries: 1,
            min_delay: 30.0,
            max_delay: 30.0,
        };
        let job = PendingDelivery::new(
            format!("http://127.0.0.1:{port}/"),
            vec![],
            "body".into(),
            policy,
            None,
            "sub".into(),
            clock.now_ms(),
        );
        assert_eq!(job.next_at_ms, 1_000_000);
        engine.store().commit(vec![job.put_op()]).await.unwrap();
        let task = tokio::spawn(run_pending(
            http_client(None, crate::EndpointPolicy::allow_all()).unwrap(),
            engine.clone(),
            job,
            |_: &str| true,
        ));
        wait_until(|| recorded(&engine).first().is_some_and(|j| j.attempts == 1)).await;
        let [after] = recorded(&engine).try_into().unwrap();
        assert_eq!(after.next_at_ms, 1_000_000 + 30_000, "the next attempt, 30 s after the engine's now");
        task.abort();
    }
}
