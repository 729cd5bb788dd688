//! sluice: a durable, fast, self-hosted server that speaks the Amazon SQS API.
//!
//! This crate is the server binary's library half:
//! - [`check`]: `sluice check DATA_DIR`, the verification of a stopped store.
//! - [`config`]: flags, `SLUICE_*` environment variables and the TOML file.
//! - [`app`]: opens the data directory, recovers the engine, declares configured queues.
//! - [`server`]: the HTTP(S) listener and graceful shutdown (`run(listener, shutdown, state)`).
//! - [`limits`]: connection limits and timeouts, the open-file limit.
//! - [`tls`]: the HTTPS certificate (rustls, ring provider), reloadable on SIGHUP.
//! - [`guard`]: the checks every request passes first (Host, Origin, no state change by unsigned
//!   GET): no web page may drive the server.
//! - [`auth`]: which requests must be signed (`--auth`), the check, `sluice keygen`.
//! - [`admin`]: `/health`, `/ready`, `/metrics`, the dashboard's JSON API, static files and login.
//! - [`session`]: the dashboard's login sessions (signed cookie, CSRF token).
//! - [`metrics`]: request figures and the Prometheus rendering.
//!
//! The layers below: `sluice-protocol` (wire formats) → `sluice-engine` (queue semantics) →
//! `sluice-store` (durable storage). See docs/ARCHITECTURE.md.

pub mod admin;
pub mod app;
pub mod auth;
pub mod check;
pub mod config;
pub mod guard;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod session;
pub mod tls;
