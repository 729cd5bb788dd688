//! The one test kit of sluice's Rust tests (the Python suite has its own, tests/python).
//!
//! - [`server`]: [`TestServer`], a sluice on `127.0.0.1` port 0 with its own data directory:
//!   in-process ([`TestServer::start`], [`TestServer::start_in_memory`]: `sluice::app::open` and
//!   `sluice::server::run` on a runtime of its own) where a test does not need a separate process,
//!   the real binary ([`TestServer::spawn`]) where it does (SIGTERM, SIGKILL, restarts, flags and
//!   environment variables), or an external endpoint when `SQS_ENDPOINT` is set. [`sluice_bin`]
//!   builds the binary through cargo for tests outside the `sluice` crate.
//! - [`sqs`]: an `aws-sdk-sqs` client for a plain-HTTP endpoint, unique names, queue and message
//!   helpers, and the MD5s SQS defines (the Rust SDK does not check them itself).
//! - [`tls`]: [`tls::TestCa`], a throwaway CA and server certificates made with `openssl`, for
//!   the HTTPS tests.
//!
//! Used as a dev-dependency only (`publish = false`).
//!
//! Environment:
//! - `SQS_ENDPOINT=http://host:port`: [`TestServer::start`] starts nothing and uses that endpoint
//!   (e.g. `moto_server -p 5000`); tests that need a process of their own skip themselves.
//! - `SLUICE_BIN=/path/to/sluice`: the binary [`sluice_bin`] returns, instead of building one.
//! - `SLUICE_TEST_KEEP=1`: keep the temp dirs (data + `server.log`).
//! - `SLUICE_TEST_STDERR=1`: let a spawned server's stderr through instead of writing it to
//!   `<tempdir>/server.log`.

pub mod server;
pub mod sqs;
pub mod tls;

pub use server::{external_endpoint, skip_if_external, sluice_bin, sluice_bin_with_features, TestServer};
pub use sqs::*;
