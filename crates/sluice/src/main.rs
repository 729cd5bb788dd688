//! The `sluice` command: `sluice serve` runs the server (HTTP, or HTTPS with `--tls-cert` /
//! `--tls-key`, the certificate reloaded on SIGHUP; with no access keys it serves a loopback
//! address only, unless `--auth off`); `sluice drain` empties a queue into a database; `sluice
//! keygen` prints a fresh access key; `sluice check DATA_DIR` verifies a stopped store.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sluice::config::{Config, ServeArgs};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// mimalloc instead of glibc malloc: the profile showed malloc at 18-31% of samples, growing with
/// the heap (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "sluice", version, about = "A durable, fast server that speaks the Amazon SQS API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

// One value, parsed once at start: the size difference between the server's many flags and the
// other subcommands costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Drain a queue into PostgreSQL or MongoDB at a capped write rate (see sluice-client).
    Drain(sluice_client::drain::DrainArgs),
    /// Verify a stopped store and print a report (exit code 1 if anything is damaged)
    Check {
        /// The data directory
        data_dir: std::path::PathBuf,
    },
    /// Print a fresh random access key (id and secret) to configure and sign requests with.
    Keygen {
        /// The account the key belongs to, in the printed config entry
        #[arg(long, env = "SLUICE_ACCOUNT_ID", default_value = "000000000000")]
        account_id: String,
    },
}

fn init_logging(config: &Config) {
    let filter: Targets = config.log.parse().unwrap_or_else(|e| {
        eprintln!("invalid SLUICE_LOG {:?} ({e}); using info", config.log);
        Targets::new().with_default(tracing::Level::INFO)
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if config.log_json {
        tracing_subscriber::registry().with(fmt.json().with_filter(filter)).init();
    } else {
        tracing_subscriber::registry().with(fmt.with_filter(filter)).init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    // Every connection is a descriptor: take the hard limit (logged; run() keeps max_connections under it).
    match sluice::limits::raise_open_file_limit() {
        Ok((before, after)) if after > before => tracing::info!(before, after, "open-file limit raised"),
        Ok((_, after)) => tracing::info!(limit = after, "open-file limit already at its hard limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    // The certificate is read before binding: a bad pair fails at once, with nothing listening.
    let tls = match &config.tls {
        None => None,
        Some(files) => match sluice::tls::ReloadableCert::load(&files.cert, &files.key) {
            Ok(cert) => Some(Arc::new(cert)),
            Err(e) => {
                tracing::error!(error = %e, "cannot load the TLS certificate");
                return ExitCode::FAILURE;
            }
        },
    };
    let acceptor = match tls.clone().map(sluice::tls::acceptor).transpose() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot configure TLS");
            return ExitCode::FAILURE;
        }
    };
    if let Some(cert) = tls {
        reload_on_sighup(cert);
    }
    // Bind first: while the store recovers (seconds with millions of messages queued) the port
    // already answers /health, and /ready says not yet.
    let listener = match tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await {
        Ok(l) => sluice::server::Listener { tcp: l, tls: acceptor },
        Err(e) => {
            tracing::error!(error = %e, host = %config.host, port = config.port, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.tcp.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the bound address");
            return ExitCode::FAILURE;
        }
    };
    if let Some(refusal) = config.protected_mode_refusal(addr) {
        tracing::error!("{refusal}");
        eprintln!("sluice: {refusal}");
        return ExitCode::from(2);
    }
    tracing::info!(%addr, "bound; recovering the store (/ready answers 503 until done)");
    let (recovered, wait) = tokio::sync::oneshot::channel();
    let starting = tokio::spawn(sluice::server::serve_while_starting(listener, wait));
    let opened = match sluice::app::open(&config).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let _ = recovered.send(());
    let listener = match starting.await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the startup listener task failed");
            return ExitCode::FAILURE;
        }
    };
    let scheme = listener.scheme();
    tracing::info!(%addr, scheme, data_dir = ?config.data_dir, "listening");
    // One line on stdout, for scripts and tests that start the server on port 0.
    println!("sluice listening on {scheme}://{addr}");
    let _ = std::io::stdout().flush();
    sluice::server::run(listener, shutdown_signal(), opened.state.clone()).await;
    ExitCode::SUCCESS
}

/// Re-reads the certificate and key on every SIGHUP (a renewal): new handshakes get the new pair,
/// open connections keep theirs. An unusable pair is logged and the current one stays.
fn reload_on_sighup(cert: Arc<sluice::tls::ReloadableCert>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP: the TLS certificate will not be reloaded");
                return;
            }
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match cert.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the current one")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = cert;
}

/// Turns transparent huge pages off for this process. The heap's churn (request buffers, redb
/// pages) made mimalloc return and re-fault 2 MiB pages, each zeroed whole by the kernel: ~1,000
/// huge-page faults per 5 s of batch-10 sends, `clear_page_erms` 5-6% of the server's samples.
/// With 4 KiB pages the same run costs less CPU per message (docs/BENCHMARKS.md). This is what
/// `MIMALLOC_ALLOW_THP=0` does, done here because mimalloc reads that option before `main`.
#[allow(unsafe_code)]
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Plain `sluice` means `sluice serve` (flags and SLUICE_* variables still apply).
    let command = cli.command.unwrap_or_else(|| match Cli::parse_from(["sluice", "serve"]).command {
        Some(c) => c,
        None => Command::Serve(ServeArgs::default()),
    });
    match command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Drain(args) => runtime.block_on(sluice_client::drain::main(args)),
        Command::Check { data_dir } => match sluice::check::run(&data_dir) {
            Ok((report, damaged)) => {
                print!("{report}");
                if damaged {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => {
                eprintln!("sluice check: {e}");
                ExitCode::from(2)
            }
        },
        Command::Keygen { account_id } => match sluice::auth::keygen_text(&account_id) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sluice: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
