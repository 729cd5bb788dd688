//! Issue 27's scenario over TLS: the seed burst (100,000 operation records + 5% duplicates) is
//! sent to a queue over HTTPS and drained by the real `sluice drain` binary, capped at 5,000
//! writes/s, `kill -9`ed at 40% and restarted; the sink ends with exactly one row per record.
//!
//! Source (where the queue is):
//! - default: sluice's own HTTPS listener (`sluice serve --tls-cert --tls-key`) with a CA and a
//!   server certificate made by the `openssl` command in a temp dir (SKIP without `openssl`).
//!   The drain gets only `--queue-url https://127.0.0.1:PORT/…` and `--ca-file ca.pem`: the
//!   endpoint comes from the queue URL, the credentials from the AWS chain (here its first link,
//!   `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in the environment).
//! - `SLUICE_TEST_SQS_QUEUE_URL=https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`: Amazon SQS
//!   itself (an existing, empty queue used by nothing else; credentials from the usual chain, e.g.
//!   `AWS_PROFILE`). Not run on the development machine (no AWS account there); sends and
//!   receives ~210,000 requests, so lower `SLUICE_DRAIN_RECORDS` if cost matters.
//!
//! Sink: PostgreSQL (`DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test; SKIP if
//! unset and unreachable), or MongoDB when `MONGODB_URI` is set (none on the development machine).
//! Knobs: `SLUICE_DRAIN_RECORDS` (default 100000), `SLUICE_DRAIN_RATE` (default 5000).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_client::{OutgoingMessage, Producer, ProducerConfig};
use support::{make_test_certs, sluice_bin, unique, TestCerts, TestServer};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn env_num(name: &str, default: u64) -> u64 {
    env_nonempty(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Where the drain writes, and how the test counts what arrived.
enum Sink {
    Postgres {
        db: tokio_postgres::Client,
        url: String,
        table: String,
    },
    #[cfg(feature = "mongodb")]
    Mongo {
        coll: mongodb::Collection<mongodb::bson::Document>,
        uri: String,
        name: String,
    },
}

impl Sink {
    async fn open() -> Option<Sink> {
        #[cfg(feature = "mongodb")]
        if let Some(uri) = env_nonempty("MONGODB_URI") {
            let client = mongodb::Client::with_uri_str(&uri).await.expect("MONGODB_URI");
            let name = unique("drain_https");
            let coll = client.database("sluice_test").collection(&name);
            coll.drop().await.ok();
            return Some(Sink::Mongo { coll, uri, name });
        }
        let explicit = env_nonempty("DATABASE_URL");
        let url = explicit.clone().unwrap_or_else(|| DEFAULT_PG.to_string());
        match tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(&url, tokio_postgres::NoTls)).await {
            Ok(Ok((db, conn))) => {
                tokio::spawn(conn);
                let table = unique("drain_https");
                db.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await.unwrap();
                Some(Sink::Postgres { db, url, table })
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".into(),
                };
                assert!(explicit.is_none(), "DATABASE_URL is set but PostgreSQL is not reachable: {why}");
                eprintln!("SKIP: PostgreSQL not reachable at {DEFAULT_PG} ({why}), DATABASE_URL and MONGODB_URI unset");
                None
            }
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Sink::Postgres { url, table, .. } => {
                vec!["--postgres".into(), url.clone(), "--table".into(), table.clone()]
            }
            #[cfg(feature = "mongodb")]
            Sink::Mongo { uri, name, .. } => {
                ["--mongodb", uri, "--mongo-database", "sluice_test", "--mongo-collection", name, "--mongo-object-id"]
                    .map(String::from)
                    .to_vec()
            }
        }
    }

    async fn count(&self) -> i64 {
        match self {
            Sink::Postgres { db, table, .. } => {
                db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.map(|r| r.get(0)).unwrap_or(0)
            }
            #[cfg(feature = "mongodb")]
            Sink::Mongo { coll, .. } => coll.count_documents(mongodb::bson::doc! {}).await.unwrap_or(0) as i64,
        }
    }

    /// Distinct ids (PostgreSQL; MongoDB's `_id` is unique by construction).
    async fn distinct(&self) -> i64 {
        match self {
            Sink::Postgres { db, table, .. } => {
                db.query_one(&format!("SELECT count(DISTINCT id) FROM {table}"), &[]).await.unwrap().get(0)
            }
            #[cfg(feature = "mongodb")]
            Sink::Mongo { .. } => self.count().await,
        }
    }

    /// Most rows whose commit timestamp falls in one 1-second window (PostgreSQL only).
    async fn max_rows_per_second(&self) -> Option<i64> {
        let Sink::Postgres { db, table, .. } = self else { return None };
        let q = format!(
            "WITH b AS (SELECT inserted_at AS t, count(*) AS n FROM {table} GROUP BY inserted_at) \
             SELECT coalesce(max(s), 0)::bigint FROM (SELECT sum(n) OVER (ORDER BY t RANGE BETWEEN CURRENT ROW \
             AND interval '999999 microseconds' FOLLOWING) AS s FROM b) x"
        );
        Some(db.query_one(&q, &[]).await.unwrap().get(0))
    }

    async fn clean_up(&self) {
        match self {
            Sink::Postgres { db, table, .. } => {
                db.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await.unwrap()
            }
            #[cfg(feature = "mongodb")]
            Sink::Mongo { coll, .. } => coll.drop().await.unwrap_or(()),
        }
    }
}

/// Where the queue is.
enum Source {
    Sluice { server: Box<TestServer>, certs: TestCerts },
    Aws,
}

impl Source {
    async fn open() -> Option<(Source, aws_sdk_sqs::Client, String)> {
        if let Some(queue_url) = env_nonempty("SLUICE_TEST_SQS_QUEUE_URL") {
            let region = sluice_client::client::aws_queue_url_region(&queue_url);
            let client = sluice_client::client::connect(None, region, None).await.expect("AWS client");
            return Some((Source::Aws, client, queue_url));
        }
        let certs = make_test_certs()?;
        let server = support::start_tls(&certs);
        assert!(server.endpoint.starts_with("https://127.0.0.1:"), "{}", server.endpoint);
        let client = support::tls_client(&server, &certs);
        let url = support::create_queue(&client, "ops").await;
        assert!(url.starts_with(&format!("{}/", server.endpoint)), "queue URLs over HTTPS are https://: {url}");
        Some((Source::Sluice { server: Box::new(server), certs }, client, url))
    }

    fn log_dir(&self) -> std::path::PathBuf {
        match self {
            Source::Sluice { server, .. } => server.root().to_path_buf(),
            Source::Aws => std::env::temp_dir(),
        }
    }

    fn spawn_drain(&self, queue_url: &str, sink: &Sink, rate: u64, log: &Path) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = Command::new(sluice_bin());
        cmd.arg("drain").args(["--queue-url", queue_url]).args(sink.args()).args([
            "--rate",
            &rate.to_string(),
            "--visibility-timeout",
            "5",
            "--wait-time",
            "1",
        ]);
        // No --endpoint: the drain takes it from the queue URL (sluice) or resolves Amazon SQS's
        // regional endpoint (AWS). SQS_ENDPOINT would override both.
        cmd.env_remove("SQS_ENDPOINT");
        if let Source::Sluice { certs, .. } = self {
            cmd.arg("--ca-file").arg(&certs.ca_cert);
            // The first link of the AWS credential chain; sluice accepts any credentials. The
            // region is set so the chain does not ask instance metadata for one.
            cmd.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test").env("AWS_REGION", "us-east-1");
            cmd.env_remove("AWS_CA_BUNDLE").env_remove("AWS_PROFILE");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log)).spawn().expect("spawn sluice drain")
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Sluice { certs, .. } = self {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&certs.dir);
            }
        }
    }
}

fn progress_max_rate(log: &Path) -> f64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split("s:").nth(1)?.split("rec/s").next()?.trim().parse::<f64>().ok())
        .fold(0.0, f64::max)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "drain did not exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn summary_line(child: &mut Child) -> String {
    let Some(stdout) = child.stdout.take() else { return String::new() };
    BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_over_https_is_shaved_deduplicated_and_survives_kill_9() {
    let Some(sink) = Sink::open().await else { return };
    let Some((source, client, url)) = Source::open().await else {
        sink.clean_up().await;
        return;
    };
    let records = env_num("SLUICE_DRAIN_RECORDS", 100_000) as usize;
    let rate = env_num("SLUICE_DRAIN_RATE", 5_000);
    let batch = sluice_client::drain::default_batch_size(rate as u32) as i64;
    let log = source.log_dir().join(format!("{}.log", unique("drain-https")));

    // ---- the burst: records + 5% duplicates ("producer retries"), as fast as the producer goes
    let mut bodies: Vec<String> = (0..records)
        .map(|i| {
            serde_json::json!({"_id": sluice_client::object_id_hex(), "user": format!("user-{}", i % 997), "seq": i})
                .to_string()
        })
        .collect();
    let dups = records / 20;
    for i in 0..dups {
        let copy = bodies[(i * 7919) % records].clone();
        bodies.push(copy);
    }
    fastrand::shuffle(&mut bodies[records / 2..]);
    let total_msgs = bodies.len();

    let mut drain = source.spawn_drain(&url, &sink, rate, &log);
    let produce = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            let producer =
                Producer::with_config(client, url, ProducerConfig { max_in_flight: 16, ..Default::default() });
            let mut tickets = Vec::with_capacity(bodies.len());
            for b in bodies {
                tickets.push(producer.enqueue(OutgoingMessage::new(b)).await.unwrap());
            }
            for t in tickets {
                t.wait().await.expect("send");
            }
            producer.close().await;
            t0.elapsed()
        })
    };

    // ---- kill -9 the drain at 40%, restart it
    let t_start = Instant::now();
    let kill_at = records as i64 * 2 / 5;
    loop {
        let n = sink.count().await;
        if n >= kill_at {
            break;
        }
        assert!(t_start.elapsed() < Duration::from_secs(90), "drain made no progress: {n} rows; log {}", log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drain.kill().unwrap();
    drain.wait().unwrap();
    let at_kill = sink.count().await;
    eprintln!("killed the drain (kill -9) at {at_kill} rows after {:.1}s; restarting", t_start.elapsed().as_secs_f64());
    let mut drain = source.spawn_drain(&url, &sink, rate, &log);

    let produce_time = produce.await.unwrap();
    let producer_rate = total_msgs as f64 / produce_time.as_secs_f64();
    let backlog = support::depth(&client, &url).await;

    // ---- wait for every record and an empty queue
    loop {
        let n = sink.count().await;
        let d = support::depth(&client, &url).await;
        if n as usize >= records && d == 0 {
            break;
        }
        assert!(t_start.elapsed() < Duration::from_secs(150), "not done: {n} rows, depth {d}; log {}", log.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_time = t_start.elapsed();
    let status = terminate(&mut drain);
    assert!(status.success(), "drain exit status after SIGTERM: {status}");
    let summary = summary_line(&mut drain);

    let rows = sink.count().await;
    let distinct = sink.distinct().await;
    let max_window = sink.max_rows_per_second().await;
    let progress_max = progress_max_rate(&log);
    eprintln!(
        "RESULT https records={records} duplicates_sent={dups} producer_rate={producer_rate:.0}/s backlog_after_burst={backlog} \
         drain_wall={:.1}s max_rows_in_any_1s_window={max_window:?} (cap {rate}) max_progress_rate={progress_max:.0}/s \
         rows={rows} distinct={distinct} killed_at={at_kill}\n  last drain: {summary}",
        drain_time.as_secs_f64()
    );
    assert_eq!(rows, records as i64, "exactly one row per record");
    assert_eq!(distinct, records as i64);
    // Same tolerance as tests/drain_postgres.rs: the pacer caps batch starts; database commit
    // stamps jitter by up to a batch, two on a loaded 2-core machine.
    if let Some(max_window) = max_window {
        assert!(max_window <= rate as i64 + 2 * batch, "{max_window} rows committed in one second (cap {rate})");
    }
    assert!(progress_max <= (rate + 2 * batch as u64) as f64, "{progress_max} records/s in a progress line");
    assert!(
        backlog > 0 || producer_rate < rate as f64,
        "the queue should hold a backlog when producers outrun the cap"
    );
    sink.clean_up().await;
}
