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

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::drain::{burst, env_num, produce, progress_max_rate, Drain, Progress};
use support::{sluice_bin, unique, TestCa, TestServer};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
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
    /// The server is dropped (stopped) before its CA's dir is removed.
    Sluice {
        server: Box<TestServer>,
        ca: TestCa,
    },
    Aws,
}

impl Source {
    async fn open() -> Option<(Source, aws_sdk_sqs::Client, String)> {
        if let Some(queue_url) = env_nonempty("SLUICE_TEST_SQS_QUEUE_URL") {
            let region = sluice_client::client::aws_queue_url_region(&queue_url);
            let client = sluice_client::client::connect(None, region, None).await.expect("AWS client");
            return Some((Source::Aws, client, queue_url));
        }
        let ca = TestCa::new()?;
        let server = support::start_tls(&ca);
        assert!(server.endpoint.starts_with("https://127.0.0.1:"), "{}", server.endpoint);
        let client = support::tls_client(&server, &ca);
        let url = support::create_queue(&client, "ops").await;
        assert!(url.starts_with(&format!("{}/", server.endpoint)), "queue URLs over HTTPS are https://: {url}");
        Some((Source::Sluice { server: Box::new(server), ca }, client, url))
    }

    fn log_dir(&self) -> std::path::PathBuf {
        match self {
            Source::Sluice { server, .. } => server.root().to_path_buf(),
            Source::Aws => std::env::temp_dir(),
        }
    }

    fn spawn_drain(&self, queue_url: &str, sink: &Sink, rate: u64, log: &Path) -> Drain {
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
        if let Source::Sluice { ca, .. } = self {
            cmd.arg("--ca-file").arg(&ca.cert);
            // The first link of the AWS credential chain; sluice accepts any credentials. The
            // region is set so the chain does not ask instance metadata for one.
            cmd.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test").env("AWS_REGION", "us-east-1");
            cmd.env_remove("AWS_CA_BUNDLE").env_remove("AWS_PROFILE");
        }
        Drain::spawn(&mut cmd, log)
    }
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
    let (bodies, dups) = burst(records);
    let total_msgs = bodies.len();

    let mut drain = source.spawn_drain(&url, &sink, rate, &log);
    let produce = tokio::spawn(produce(client.clone(), url.clone(), bodies));

    // ---- kill -9 the drain at 40%, restart it
    let t_start = Instant::now();
    let kill_at = records as i64 * 2 / 5;
    let mut progress = Progress::new();
    loop {
        let n = sink.count().await;
        if n >= kill_at {
            break;
        }
        progress.check(n, &log);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drain.kill();
    let at_kill = sink.count().await;
    eprintln!("killed the drain (kill -9) at {at_kill} rows after {:.1}s; restarting", t_start.elapsed().as_secs_f64());
    let mut drain = source.spawn_drain(&url, &sink, rate, &log);

    let produce_time = produce.await.unwrap();
    let producer_rate = total_msgs as f64 / produce_time.as_secs_f64();
    let backlog = support::depth(&client, &url).await;

    // ---- wait for every record and an empty queue
    let mut progress = Progress::new();
    loop {
        let n = sink.count().await;
        let d = support::depth(&client, &url).await;
        if n as usize >= records && d == 0 {
            break;
        }
        progress.check((n, d), &log);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_time = t_start.elapsed();
    let status = drain.terminate();
    assert!(status.success(), "drain exit status after SIGTERM: {status}");
    let summary = drain.summary();

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
