//! Server configuration: command-line flags, `SLUICE_*` environment variables and an optional
//! commented TOML file, in that order of precedence, over built-in defaults.
//!
//! See `sluice.example.toml` at the repository root for every setting, with comments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use sluice_protocol::auth::access::PolicyMode;
use sluice_protocol::auth::{Credentials, Secret};

use crate::limits::{parse_duration, ConnectionLimits};

/// Flags of `sluice serve`. Every flag also reads an environment variable.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "SLUICE_HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one (the bound address is printed) [default: 9324]
    #[arg(long, env = "SLUICE_PORT")]
    pub port: Option<u16>,
    /// Data directory; ":memory:" keeps nothing on disk [default: ./sluice-data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Start even though the data directory is damaged: keep every readable write-ahead log record,
    /// drop the damaged ones and go on without missing files, logging exactly what was dropped.
    /// Deliberately a flag only (no environment variable or config key): run `sluice check` first
    #[arg(long)]
    pub salvage: bool,
    /// Region used in queue ARNs [default: us-east-1]
    #[arg(long, env = "SLUICE_REGION")]
    pub region: Option<String>,
    /// Account id used in queue URLs and ARNs [default: 000000000000]
    #[arg(long, env = "SLUICE_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Log filter, e.g. "info" or "warn,sluice=debug" [default: info]
    #[arg(long, env = "SLUICE_LOG")]
    pub log: Option<String>,
    /// Log format: "text" or "json" [default: text]
    #[arg(long, env = "SLUICE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Fixed base URL for queue URLs, e.g. `https://sqs.internal:9324` [default: from the Host header]
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Path of a TOML config file
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// PEM bundle of CA certificates trusted for https:// SNS subscribers, besides the public
    /// (Mozilla) roots [default: none]
    #[arg(long, env = "SLUICE_SNS_CA_FILE")]
    pub sns_ca_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first): serve HTTPS instead of HTTP. Needs --tls-key; reloaded
    /// on SIGHUP [default: none]
    #[arg(long, env = "SLUICE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert [default: none]
    #[arg(long, env = "SLUICE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Host names this server answers to besides IP addresses, localhost, --host and the host of
    /// --public-url (DNS-rebinding protection), comma-separated; ".example.com" also allows its
    /// subdomains, "*" allows any [default: none]
    #[arg(long, env = "SLUICE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Let SNS http(s) subscriptions reach loopback, private and link-local addresses (refused by
    /// default: SSRF protection)
    #[arg(long, env = "SLUICE_SNS_ALLOW_PRIVATE_ENDPOINTS", value_parser = clap::builder::BoolishValueParser::new())]
    pub sns_allow_private_endpoints: bool,
    /// CIDR blocks SNS http(s) subscriptions may reach besides public addresses, comma-separated,
    /// e.g. "127.0.0.0/8,10.1.0.0/16" [default: none]
    #[arg(long, env = "SLUICE_SNS_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub sns_allowed_networks: Vec<String>,
    /// "sigv4": every request must be signed with a configured access key; "off": none is checked
    /// [default: sigv4 when access keys are configured; with none, open on a loopback address
    /// only, and refusing to start on any other]
    #[arg(long, env = "SLUICE_AUTH")]
    pub auth: Option<String>,
    /// An access key id, in the account of --account-id (its secret: SLUICE_SECRET_ACCESS_KEY)
    #[arg(long, env = "SLUICE_ACCESS_KEY_ID", requires = "secret_access_key")]
    pub access_key_id: Option<String>,
    /// The secret of --access-key-id. Prefer the environment variable: flags show in `ps`
    #[arg(long, env = "SLUICE_SECRET_ACCESS_KEY", hide_env_values = true, requires = "access_key_id")]
    pub secret_access_key: Option<Secret>,
    /// "enforce": queue, topic and identity policies deny what they deny; "log": only log what
    /// they would deny, for teams adopting policies [default: enforce]
    #[arg(long, env = "SLUICE_POLICY_MODE")]
    pub policy_mode: Option<String>,
    /// Most time a client may take to send a request's head, e.g. "10s" or "500ms" [default: 10s]
    #[arg(long, env = "SLUICE_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<String>,
    /// Most time a client may take to send a request's body [default: 30s]
    #[arg(long, env = "SLUICE_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<String>,
    /// How long an idle keep-alive connection is kept (a long poll is not idle) [default: 60s]
    #[arg(long, env = "SLUICE_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Open connections at most; beyond it clients get 503 ServiceUnavailable. Lowered at start
    /// if the open-file limit is smaller [default: 10000]
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// A token /metrics then requires as `Authorization: Bearer <token>`. Prefer the environment
    /// variable: flags show in `ps` [default: none, /metrics is open]
    #[arg(long, env = "SLUICE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Encryption at rest: a file of 32 random bytes (raw or base64), the master key. Message
    /// bodies and attributes of queues with SSE (SqsManagedSseEnabled, the default, or
    /// KmsMasterKeyId) are stored encrypted [default: none, stored in the clear]
    #[arg(long, env = "SLUICE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Previous master keys (files, comma-separated in the variable), kept for reading during a
    /// rotation: their data keys are rewrapped under --master-key-file at start [default: none]
    #[arg(long, env = "SLUICE_OLD_MASTER_KEY_FILE", value_delimiter = ',')]
    pub old_master_key_file: Vec<PathBuf>,
}

/// The TOML file's contents; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub account_id: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub public_url: Option<String>,
    pub sns_ca_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allowed_hosts: Option<Vec<String>>,
    pub sns_allow_private_endpoints: Option<bool>,
    pub sns_allowed_networks: Option<Vec<String>>,
    /// "sigv4" or "off".
    pub auth: Option<String>,
    /// "enforce" or "log".
    pub policy_mode: Option<String>,
    /// The bearer token /metrics requires.
    pub metrics_token: Option<Secret>,
    /// Access keys requests may be signed with.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyDecl>,
    pub header_read_timeout: Option<DurationSetting>,
    pub body_read_timeout: Option<DurationSetting>,
    pub idle_timeout: Option<DurationSetting>,
    pub max_connections: Option<usize>,
    /// Encryption at rest: the master key's file (32 bytes, raw or base64).
    pub master_key_file: Option<PathBuf>,
    /// Previous master keys, kept for reading while data keys are rewrapped.
    #[serde(default)]
    pub old_master_key_files: Vec<PathBuf>,
    /// The local key ring: a `KmsMasterKeyId` (an alias `alias/…` or a key id) → its key file.
    #[serde(default)]
    pub kms_keys: BTreeMap<String, PathBuf>,
    /// Queues to create at startup.
    #[serde(default)]
    pub queues: Vec<QueueDecl>,
}

/// An access key declared in the config file. `Debug` does not show the secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyDecl {
    pub id: String,
    pub secret: Secret,
    /// The key's account [default: the server's `account_id`].
    pub account_id: Option<String>,
    /// [default: `arn:aws:iam::ACCOUNT:root`]
    pub principal_arn: Option<String>,
    /// An IAM identity policy (JSON text), enforced on the key's requests [default: none, the
    /// account's full access].
    pub policy: Option<String>,
}

/// Whether requests must be signed (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No request is checked.
    Off,
    /// Every request must carry a valid SigV4 signature of a configured key.
    SigV4,
}

/// A duration in the TOML file: a string with a unit (`"250ms"`, `"10s"`, `"2m"`) or a number of
/// seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationSetting {
    Seconds(u64),
    Text(String),
}

impl DurationSetting {
    fn text(self) -> String {
        match self {
            DurationSetting::Seconds(n) => n.to_string(),
            DurationSetting::Text(t) => t,
        }
    }
}

/// A queue declared in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDecl {
    pub name: String,
    /// SQS attribute names and values (numbers, booleans or strings).
    #[serde(default)]
    pub attributes: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl QueueDecl {
    /// Attribute values as the strings SQS expects.
    pub fn attribute_strings(&self) -> BTreeMap<String, String> {
        self.attributes
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// None: in memory only.
    pub data_dir: Option<PathBuf>,
    /// `--salvage`: open a damaged store, dropping what cannot be read.
    pub salvage: bool,
    pub region: String,
    pub account_id: String,
    pub log: String,
    pub log_json: bool,
    pub public_url: Option<String>,
    /// Extra CA certificates (PEM) for https:// SNS subscribers.
    pub sns_ca_file: Option<PathBuf>,
    /// HTTPS: the certificate chain and key files (PEM). None: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Extra names the server answers to (`Host` check; "*": any). See [`crate::guard`].
    pub allowed_hosts: Vec<String>,
    /// The addresses SNS http(s) subscribers may have besides public ones.
    pub sns_endpoints: sluice_sns::EndpointPolicy,
    /// `--auth` as given; None: decided by whether keys are configured (see [`Config::auth_mode`]).
    pub auth: Option<AuthMode>,
    /// Access keys from the file and the environment. `Debug` redacts the secrets.
    pub access_keys: Vec<Credentials>,
    /// `--policy-mode`.
    pub policy_mode: PolicyMode,
    /// Connection limits and timeouts of the listener.
    pub limits: ConnectionLimits,
    /// `--metrics-token` (`Debug` redacts it); None: /metrics is open.
    pub metrics_token: Option<Secret>,
    pub queues: Vec<QueueDecl>,
    /// Encryption at rest: the key files. None: message records are stored in the clear.
    pub at_rest: Option<AtRestFiles>,
}

/// The key files of encryption at rest (read by `app::open`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRestFiles {
    pub master: PathBuf,
    pub old_masters: Vec<PathBuf>,
    /// `KmsMasterKeyId` (alias or key id) → key file; `alias/aws/sqs` is always the master key.
    pub kms_keys: BTreeMap<String, PathBuf>,
}

/// The PEM files of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid config file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// Merges flags/env over the file over defaults.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("./sluice-data"));
        let log_format = args.log_format.clone().or(file.log_format).unwrap_or_else(|| "text".into());
        let log_json = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => return Err(ConfigError::Invalid(format!("log format must be text or json, not {other:?}"))),
        };
        let account_id = args.account_id.clone().or(file.account_id).unwrap_or_else(|| "000000000000".into());
        if account_id.is_empty() || !account_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::Invalid(format!("account id must be alphanumeric, not {account_id:?}")));
        }
        // Each of the pair is taken from the highest-precedence source that sets it; a pair split
        // across sources (cert flag, key in the file) is allowed, a half pair is not.
        let tls = match (args.tls_cert.clone().or(file.tls_cert), args.tls_key.clone().or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Invalid("tls_cert is set but tls_key is not".into())),
            (None, Some(_)) => return Err(ConfigError::Invalid("tls_key is set but tls_cert is not".into())),
        };
        // Lists: the flag (or env) if given, else the file's.
        let list = |flag: &Vec<String>, file: Option<Vec<String>>| -> Vec<String> {
            let chosen = if flag.is_empty() { file.unwrap_or_default() } else { flag.clone() };
            chosen.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        };
        let sns_endpoints = sluice_sns::EndpointPolicy::new(
            args.sns_allow_private_endpoints || file.sns_allow_private_endpoints.unwrap_or(false),
            &list(&args.sns_allowed_networks, file.sns_allowed_networks),
        )
        .map_err(ConfigError::Invalid)?;
        let auth = match args.auth.clone().or(file.auth).as_deref() {
            None => None,
            Some("off") => Some(AuthMode::Off),
            Some("sigv4") => Some(AuthMode::SigV4),
            Some(other) => return Err(ConfigError::Invalid(format!("auth must be off or sigv4, not {other:?}"))),
        };
        let mut decls = file.access_keys;
        if let (Some(id), Some(secret)) = (args.access_key_id.clone(), args.secret_access_key.clone()) {
            decls.push(AccessKeyDecl { id, secret, account_id: None, principal_arn: None, policy: None });
        }
        let mut access_keys = Vec::with_capacity(decls.len());
        for d in decls {
            let account = d.account_id.unwrap_or_else(|| account_id.clone());
            if account.is_empty() || !account.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ConfigError::Invalid(format!("access key {}: account id must be alphanumeric", d.id)));
            }
            if let Some(policy) = &d.policy {
                sluice_engine::iam::Policy::parse(policy)
                    .map_err(|e| ConfigError::Invalid(format!("access key {}: policy: {e}", d.id)))?;
            }
            access_keys.push(Credentials {
                principal_arn: d.principal_arn.unwrap_or_else(|| format!("arn:aws:iam::{account}:root")),
                access_key_id: d.id,
                secret_access_key: d.secret,
                account_id: account,
                policy: d.policy,
            });
        }
        let policy_mode = match args.policy_mode.clone().or(file.policy_mode) {
            None => PolicyMode::Enforce,
            Some(m) => m.parse().map_err(ConfigError::Invalid)?,
        };
        if auth == Some(AuthMode::SigV4) && access_keys.is_empty() {
            return Err(ConfigError::Invalid(
                "auth is sigv4 but no access key is configured: add [[access_keys]] to the config file, or set \
                 SLUICE_ACCESS_KEY_ID and SLUICE_SECRET_ACCESS_KEY (`sluice keygen` prints a fresh pair)"
                    .into(),
            ));
        }
        let defaults = ConnectionLimits::default();
        let duration = |name: &str, flag: &Option<String>, file: Option<DurationSetting>, default| match flag
            .clone()
            .or(file.map(DurationSetting::text))
        {
            None => Ok(default),
            Some(text) => parse_duration(&text).map_err(|e| ConfigError::Invalid(format!("{name}: {e}"))),
        };
        let max_connections = args.max_connections.or(file.max_connections).unwrap_or(defaults.max_connections);
        if max_connections == 0 {
            return Err(ConfigError::Invalid("max_connections must be at least 1".into()));
        }
        let limits = ConnectionLimits {
            header_read_timeout: duration(
                "header_read_timeout",
                &args.header_read_timeout,
                file.header_read_timeout,
                defaults.header_read_timeout,
            )?,
            body_read_timeout: duration(
                "body_read_timeout",
                &args.body_read_timeout,
                file.body_read_timeout,
                defaults.body_read_timeout,
            )?,
            idle_timeout: duration("idle_timeout", &args.idle_timeout, file.idle_timeout, defaults.idle_timeout)?,
            max_connections,
        };
        let old_masters = if args.old_master_key_file.is_empty() {
            file.old_master_key_files
        } else {
            args.old_master_key_file.clone()
        };
        let at_rest = match args.master_key_file.clone().or(file.master_key_file) {
            Some(master) => Some(AtRestFiles { master, old_masters, kms_keys: file.kms_keys }),
            None if old_masters.is_empty() && file.kms_keys.is_empty() => None,
            None => {
                return Err(ConfigError::Invalid(
                    "old master keys or [kms_keys] are set but no master key: set master_key_file \
                     (--master-key-file / SLUICE_MASTER_KEY_FILE)"
                        .into(),
                ))
            }
        };
        if let Some(files) = &at_rest {
            if files.kms_keys.contains_key(sluice_engine::at_rest::AWS_MANAGED_ALIAS) {
                return Err(ConfigError::Invalid("[kms_keys]: alias/aws/sqs is always the master key".into()));
            }
        }
        Ok(Config {
            at_rest,
            allowed_hosts: list(&args.allowed_hosts, file.allowed_hosts),
            sns_endpoints,
            host: args.host.clone().or(file.host).unwrap_or_else(|| "127.0.0.1".into()),
            port: args.port.or(file.port).unwrap_or(9324),
            data_dir: (data_dir != Path::new(":memory:")).then_some(data_dir),
            salvage: args.salvage,
            region: args.region.clone().or(file.region).unwrap_or_else(|| "us-east-1".into()),
            account_id,
            log: args.log.clone().or(file.log).unwrap_or_else(|| "info".into()),
            log_json,
            public_url: args.public_url.clone().or(file.public_url),
            sns_ca_file: args.sns_ca_file.clone().or(file.sns_ca_file),
            tls,
            auth,
            access_keys,
            policy_mode,
            limits,
            metrics_token: args.metrics_token.clone().or(file.metrics_token).filter(|t| !t.expose().is_empty()),
            queues: file.queues,
        })
    }

    /// Whether requests are verified: `--auth` if given, else sigv4 exactly when keys are
    /// configured. (With neither, the server is open, which `main` allows on loopback only.)
    pub fn auth_mode(&self) -> AuthMode {
        match self.auth {
            Some(mode) => mode,
            None if self.access_keys.is_empty() => AuthMode::Off,
            None => AuthMode::SigV4,
        }
    }

    /// Protected mode, like Redis's: with no access keys and no explicit `--auth off`, the server
    /// serves only a loopback address. Returns the refusal to print for any other address.
    pub fn protected_mode_refusal(&self, bound: std::net::SocketAddr) -> Option<String> {
        if self.auth.is_some() || !self.access_keys.is_empty() || bound.ip().is_loopback() {
            return None;
        }
        Some(format!(
            "refusing to serve on {bound}: no access keys are configured, so anyone who can reach this address \
             could use every queue and topic. Either configure access keys ([[access_keys]] in the config file, \
             or SLUICE_ACCESS_KEY_ID and SLUICE_SECRET_ACCESS_KEY; `sluice keygen` prints a fresh pair), or run \
             open on purpose with --auth off (SLUICE_AUTH=off). On 127.0.0.1 the server runs open without either."
        ))
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_allows_loopback_keys_or_an_explicit_choice() {
        let open = Config::load(&ServeArgs::default()).unwrap();
        assert_eq!(open.auth_mode(), AuthMode::Off);
        assert_eq!(open.protected_mode_refusal("127.0.0.1:9324".parse().unwrap()), None);
        assert_eq!(open.protected_mode_refusal("[::1]:9324".parse().unwrap()), None);
        let refusal = open.protected_mode_refusal("0.0.0.0:9324".parse().unwrap()).unwrap();
        assert!(refusal.contains("--auth off") && refusal.contains("SLUICE_AUTH=off"), "{refusal}");
        assert!(refusal.contains("SLUICE_ACCESS_KEY_ID") && refusal.contains("[[access_keys]]"), "{refusal}");
        let off = Config::load(&ServeArgs { auth: Some("off".into()), ..Default::default() }).unwrap();
        assert_eq!(off.protected_mode_refusal("0.0.0.0:9324".parse().unwrap()), None);
        let keyed = ServeArgs {
            access_key_id: Some("AK".into()),
            secret_access_key: Some(Secret::new("x")),
            ..Default::default()
        };
        assert_eq!(Config::load(&keyed).unwrap().protected_mode_refusal("10.1.2.3:9324".parse().unwrap()), None);
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../sluice.example.toml");
        let file: FileConfig = toml::from_str(text).unwrap();
        assert_eq!(file.port, Some(9324));
        let q = file.queues.iter().find(|q| q.name == "orders").unwrap();
        assert_eq!(q.attribute_strings()["VisibilityTimeout"], "60");
    }

    #[test]
    fn flags_override_file_and_defaults() {
        let dir = std::env::temp_dir().join(format!("sluice-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "port = 1234\nregion = \"eu-west-1\"\n").unwrap();
        let args = ServeArgs { config: Some(path.clone()), port: Some(5678), ..Default::default() };
        let c = Config::load(&args).unwrap();
        assert_eq!((c.port, c.region.as_str(), c.host.as_str()), (5678, "eu-west-1", "127.0.0.1"));
        assert_eq!(c.sns_ca_file, None);
        std::fs::write(&path, "sns_ca_file = \"/etc/file-ca.pem\"\n").unwrap();
        let file_only = Config::load(&ServeArgs { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(file_only.sns_ca_file, Some(PathBuf::from("/etc/file-ca.pem")));
        let flag =
            ServeArgs { config: Some(path.clone()), sns_ca_file: Some("/flag-ca.pem".into()), ..Default::default() };
        assert_eq!(Config::load(&flag).unwrap().sns_ca_file, Some(PathBuf::from("/flag-ca.pem")));
        assert_eq!(c.tls, None);
        std::fs::write(&path, "tls_cert = \"/etc/sluice/cert.pem\"\ntls_key = \"/etc/sluice/key.pem\"\n").unwrap();
        let tls = Config::load(&ServeArgs { config: Some(path.clone()), ..Default::default() }).unwrap().tls.unwrap();
        assert_eq!((tls.cert.to_str(), tls.key.to_str()), (Some("/etc/sluice/cert.pem"), Some("/etc/sluice/key.pem")));
        let flag = ServeArgs { config: Some(path.clone()), tls_cert: Some("/flag.pem".into()), ..Default::default() };
        assert_eq!(Config::load(&flag).unwrap().tls.unwrap().cert, PathBuf::from("/flag.pem"));
        std::fs::write(&path, "tls_cert = \"/etc/sluice/cert.pem\"\n").unwrap();
        assert!(Config::load(&ServeArgs { config: Some(path.clone()), ..Default::default() }).is_err(), "half a pair");
        std::fs::write(
            &path,
            "allowed_hosts = [\"sluice\"]\nsns_allow_private_endpoints = true\nsns_allowed_networks = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let c = Config::load(&ServeArgs { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(c.allowed_hosts, ["sluice"]);
        assert!(c.sns_endpoints.allow_private && c.sns_endpoints.allowed_networks.len() == 1);
        let flag = ServeArgs {
            config: Some(path.clone()),
            allowed_hosts: vec!["a".into(), " b ".into()],
            sns_allowed_networks: vec!["127.0.0.1".into()],
            ..Default::default()
        };
        let c = Config::load(&flag).unwrap();
        assert_eq!(c.allowed_hosts, ["a", "b"], "the flag replaces the file's list");
        let nets: Vec<String> = c.sns_endpoints.allowed_networks.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["127.0.0.1/32"]);
        let bad_net = ServeArgs { sns_allowed_networks: vec!["10.0.0.0/40".into()], ..Default::default() };
        assert!(Config::load(&bad_net).is_err());
        let auth = dir.join("auth.toml");
        std::fs::write(
            &auth,
            "[[access_keys]]\nid = \"AKID1\"\nsecret = \"s3cr3t-value\"\npolicy = '{\"Version\": \"2012-10-17\"}'\n\
             [[access_keys]]\nid = \"AKID2\"\nsecret = \"other\"\naccount_id = \"111122223333\"\n\
             principal_arn = \"arn:aws:iam::111122223333:user/bob\"\n",
        )
        .unwrap();
        let c = Config::load(&ServeArgs { config: Some(auth.clone()), ..Default::default() }).unwrap();
        assert_eq!(c.auth_mode(), AuthMode::SigV4, "keys configured: sigv4 by default");
        assert_eq!(c.access_keys[0].account_id, "000000000000");
        assert_eq!(c.access_keys[0].principal_arn, "arn:aws:iam::000000000000:root");
        assert_eq!(c.access_keys[1].principal_arn, "arn:aws:iam::111122223333:user/bob");
        assert!(!format!("{c:?}").contains("s3cr3t-value"), "secrets are redacted in Debug");
        let off = ServeArgs { config: Some(auth.clone()), auth: Some("off".into()), ..Default::default() };
        assert_eq!(Config::load(&off).unwrap().auth_mode(), AuthMode::Off);
        let env_key = ServeArgs {
            access_key_id: Some("AKENV".into()),
            secret_access_key: Some(Secret::new("x")),
            account_id: Some("222233334444".into()),
            ..Default::default()
        };
        let c = Config::load(&env_key).unwrap();
        assert_eq!(
            (c.access_keys[0].access_key_id.as_str(), c.access_keys[0].account_id.as_str()),
            ("AKENV", "222233334444")
        );
        let sigv4_without_keys = ServeArgs { auth: Some("sigv4".into()), ..Default::default() };
        assert!(Config::load(&sigv4_without_keys).is_err());
        assert!(Config::load(&ServeArgs { auth: Some("maybe".into()), ..Default::default() }).is_err());
        std::fs::write(&path, "idle_timeout = \"90s\"\nbody_read_timeout = 5\nmax_connections = 50\n").unwrap();
        let limits = Config::load(&ServeArgs { config: Some(path.clone()), ..Default::default() }).unwrap().limits;
        assert_eq!(limits.idle_timeout, std::time::Duration::from_secs(90));
        assert_eq!(limits.body_read_timeout, std::time::Duration::from_secs(5));
        assert_eq!(limits.header_read_timeout, ConnectionLimits::default().header_read_timeout);
        assert_eq!(limits.max_connections, 50);
        let flag = ServeArgs { config: Some(path.clone()), idle_timeout: Some("250ms".into()), ..Default::default() };
        assert_eq!(Config::load(&flag).unwrap().limits.idle_timeout, std::time::Duration::from_millis(250));
        let zero =
            ServeArgs { config: Some(path.clone()), header_read_timeout: Some("0s".into()), ..Default::default() };
        assert!(Config::load(&zero).is_err(), "a timeout of zero");
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "prot = 1\n").unwrap();
        assert!(Config::load(&ServeArgs { config: Some(bad), ..Default::default() }).is_err());
    }
}
