//! Prometheus metrics: request counts and latencies by action and outcome (recorded here), plus the
//! per-queue figures, store commit figures and gauges read from the engine and store at scrape time.
//! Rendered in the Prometheus text format at `GET /metrics`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use sluice_engine::Engine;
use sluice_protocol::sqs::action::OPERATIONS;
use sluice_store::stats::{Histogram, SECONDS_BUCKETS};

/// Request figures recorded by the listener.
pub struct Metrics {
    /// (action, outcome) → count. Actions are bounded to the model's operations (+ "unknown").
    requests: Mutex<HashMap<(&'static str, &'static str), u64>>,
    /// action → latency histogram.
    latency: Mutex<HashMap<&'static str, Histogram>>,
    /// Open HTTP connections.
    pub open_connections: AtomicI64,
    /// Connections refused because `max_connections` were open.
    pub refused_connections: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(HashMap::new()),
            latency: Mutex::new(HashMap::new()),
            open_connections: AtomicI64::new(0),
            refused_connections: AtomicU64::new(0),
        }
    }
}

fn outcome(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

impl Metrics {
    /// Records one SQS request.
    pub fn record(&self, action: Option<&str>, status: u16, seconds: f64) {
        let action = action
            .and_then(|a| OPERATIONS.iter().chain(sluice_sns::OPERATIONS).find(|o| **o == a).copied())
            .unwrap_or("unknown");
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((action, outcome(status))).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            l.entry(action).or_insert_with(|| Histogram::new(SECONDS_BUCKETS)).observe(seconds);
        }
    }

    /// The whole exposition.
    pub fn render(&self, engine: &Engine, topics: &[sluice_sns::TopicOverview]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        render_queues(&mut out, engine);
        render_topics(&mut out, topics);
        header(&mut out, "sluice_requests_total", "counter", "SQS requests by action and outcome.");
        if let Ok(r) = self.requests.lock() {
            let mut rows: Vec<_> = r.iter().collect();
            rows.sort();
            for ((action, outcome), n) in rows {
                let _ = writeln!(out, "sluice_requests_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}");
            }
        }
        header(&mut out, "sluice_request_duration_seconds", "histogram", "SQS request latency by action.");
        if let Ok(l) = self.latency.lock() {
            let mut rows: Vec<_> = l.iter().collect();
            rows.sort_by_key(|(a, _)| **a);
            for (action, h) in rows {
                histogram(&mut out, "sluice_request_duration_seconds", &format!("action=\"{action}\""), h);
            }
        }
        let store = engine.store().stats();
        header(
            &mut out,
            "sluice_store_commit_duration_seconds",
            "histogram",
            "Time of one group commit, fsync included.",
        );
        histogram(&mut out, "sluice_store_commit_duration_seconds", "", &store.commit_seconds);
        header(&mut out, "sluice_store_commit_ops", "histogram", "Operations per group commit.");
        histogram(&mut out, "sluice_store_commit_ops", "", &store.commit_ops);
        header(
            &mut out,
            "sluice_store_degraded",
            "gauge",
            "1 while the disk is short of space and the store refuses sends (the log says why), else 0.",
        );
        let _ = writeln!(out, "sluice_store_degraded {}", u8::from(engine.store().degraded().is_some()));
        header(
            &mut out,
            "sluice_quarantined_messages",
            "gauge",
            "Messages moved aside because their stored record failed verification (kept in the store, logged).",
        );
        let _ = writeln!(out, "sluice_quarantined_messages {}", engine.quarantined());
        header(
            &mut out,
            "sluice_at_rest_damaged_records_total",
            "counter",
            "Records encrypted at rest that did not decrypt since start (damaged, or moved from another queue or message).",
        );
        let _ = writeln!(out, "sluice_at_rest_damaged_records_total {}", engine.damaged_records());
        header(&mut out, "sluice_open_connections", "gauge", "Open HTTP connections.");
        let _ = writeln!(out, "sluice_open_connections {}", self.open_connections.load(Ordering::Relaxed));
        header(
            &mut out,
            "sluice_refused_connections_total",
            "counter",
            "Connections refused (503) or closed because max_connections were open.",
        );
        let _ = writeln!(out, "sluice_refused_connections_total {}", self.refused_connections.load(Ordering::Relaxed));
        header(&mut out, "sluice_long_polls_waiting", "gauge", "ReceiveMessage calls waiting in a long poll.");
        let _ = writeln!(out, "sluice_long_polls_waiting {}", engine.long_polls_waiting());
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let (buckets, count, sum) = h.snapshot();
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, n) in buckets {
        let le = if bound.is_infinite() { "+Inf".to_string() } else { bound.to_string() };
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
    }
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

/// Escapes a label value (queue names are tame, but the format demands it).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// SNS → SQS copies a queue policy refused (AWS drops them without a word; here they are counted).
pub fn render_denied_deliveries(out: &mut String, denied: u64) {
    header(
        out,
        "sluice_sns_deliveries_denied_total",
        "counter",
        "SNS copies to SQS queues whose policy does not allow the topic (dropped, as on AWS).",
    );
    let _ = writeln!(out, "sluice_sns_deliveries_denied_total {denied}");
}

fn render_topics(out: &mut String, topics: &[sluice_sns::TopicOverview]) {
    header(out, "sluice_sns_subscriptions", "gauge", "SNS subscriptions by topic and state.");
    for t in topics {
        let name = label(&t.name);
        let _ = writeln!(
            out,
            "sluice_sns_subscriptions{{topic=\"{name}\",state=\"confirmed\"}} {}",
            t.subscriptions_confirmed
        );
        let _ =
            writeln!(out, "sluice_sns_subscriptions{{topic=\"{name}\",state=\"pending\"}} {}", t.subscriptions_pending);
    }
    header(out, "sluice_sns_messages_published_total", "counter", "Messages published to an SNS topic.");
    for t in topics {
        let _ = writeln!(out, "sluice_sns_messages_published_total{{topic=\"{}\"}} {}", label(&t.name), t.published);
    }
}

fn render_queues(out: &mut String, engine: &Engine) {
    let queues = engine.overviews();
    type Getter = fn(&sluice_engine::QueueOverview) -> f64;
    let series: &[(&str, &str, &str, Getter)] = &[
        (
            "sluice_queue_messages_visible",
            "gauge",
            "Messages available for retrieval (ApproximateNumberOfMessages).",
            |q| q.counts.visible as f64,
        ),
        (
            "sluice_queue_messages_inflight",
            "gauge",
            "Messages received and not yet deleted (ApproximateNumberOfMessagesNotVisible).",
            |q| q.counts.inflight as f64,
        ),
        (
            "sluice_queue_messages_delayed",
            "gauge",
            "Messages not yet visible because of a delay (ApproximateNumberOfMessagesDelayed).",
            |q| q.counts.delayed as f64,
        ),
        (
            "sluice_queue_oldest_message_age_seconds",
            "gauge",
            "Age of the oldest message in the queue (0 when empty).",
            |q| q.oldest_age_ms.unwrap_or(0) as f64 / 1000.0,
        ),
        ("sluice_queue_stored_bytes", "gauge", "Bytes of message bodies and attributes stored.", |q| {
            q.counts.bytes as f64
        }),
        (
            "sluice_queue_messages_sent_total",
            "counter",
            "Messages sent (accepted, de-duplicated sends excluded).",
            |q| q.sent as f64,
        ),
        ("sluice_queue_messages_received_total", "counter", "Messages handed to receivers.", |q| q.received as f64),
        ("sluice_queue_messages_deleted_total", "counter", "Messages deleted by receivers.", |q| q.deleted as f64),
        ("sluice_queue_empty_receives_total", "counter", "ReceiveMessage calls that returned nothing.", |q| {
            q.empty_receives as f64
        }),
        ("sluice_queue_messages_dead_lettered_total", "counter", "Messages moved to the dead-letter queue.", |q| {
            q.dead_lettered as f64
        }),
    ];
    for (name, kind, help, get) in series {
        header(out, name, kind, help);
        for q in &queues {
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", label(&q.name), get(q));
        }
    }
}
