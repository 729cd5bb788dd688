//! Who may do what: the policy check every signed SQS and SNS request passes before its action
//! runs, with the evaluator of `sluice_engine::iam` (queue and topic policies, the key's identity
//! policy, AWS's evaluation logic).
//!
//! Only signed requests carry an [`Identity`]; with `--auth off` (or no keys, on loopback) there is
//! none and no policy is enforced on API calls (SNS → SQS deliveries are checked in sluice-sns).
//! [`PolicyMode::Log`] evaluates everything and logs what would be denied without denying.

use std::net::IpAddr;

use sluice_engine::iam::{self, Policy, Principal};

use super::Identity;

/// `--policy-mode`: enforce policies, or only log what they would deny (for teams adopting them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyMode {
    #[default]
    Enforce,
    Log,
}

impl std::str::FromStr for PolicyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<PolicyMode, String> {
        match s {
            "enforce" => Ok(PolicyMode::Enforce),
            "log" => Ok(PolicyMode::Log),
            other => Err(format!("policy mode must be enforce or log, not {other:?}")),
        }
    }
}

/// The facts of a request that policies condition on, besides its action and resource.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// Who signed it; None: the server runs without authentication.
    pub identity: Option<&'a Identity>,
    /// `aws:SecureTransport`: it came over TLS.
    pub secure_transport: bool,
    /// `aws:SourceIp`: the peer's address.
    pub source_ip: Option<IpAddr>,
    pub mode: PolicyMode,
}

/// One access question: may the caller do `action` (`sqs:SendMessage`) on `resource`?
pub struct Access<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub resource_account: &'a str,
    /// The resource's policy, if it has one.
    pub policy: Option<&'a Policy>,
    /// The engine's clock (`aws:CurrentTime`).
    pub now_ms: u64,
}

impl Caller<'_> {
    /// True when nothing can deny the request, so the resource's policy need not be looked up:
    /// no identity (auth off), or a key without an identity policy acting in its own account on a
    /// server where no resource policy has ever been stored. A couple of comparisons.
    pub fn unrestricted(&self, resource_account: &str) -> bool {
        match self.identity {
            None => true,
            Some(id) => {
                id.parsed_policy().is_none() && id.account_id() == resource_account && !iam::any_stored_policy()
            }
        }
    }

    /// Evaluates `access`. `Err` holds AWS's message for the denial; in [`PolicyMode::Log`] the
    /// denial is logged and `Ok` returned.
    pub fn check(&self, access: &Access<'_>) -> Result<(), String> {
        let Some(id) = self.identity else { return Ok(()) };
        let req = iam::Request {
            principal: Principal::Aws { account: id.account_id(), arn: id.principal_arn() },
            action: access.action,
            resource: access.resource,
            resource_account: access.resource_account,
            source_arn: None,
            source_account: None,
            secure_transport: Some(self.secure_transport),
            source_ip: self.source_ip,
            now_ms: access.now_ms,
        };
        let Err(denial) = iam::authorize(id.parsed_policy().map(|p| &**p), access.policy, &req) else {
            return Ok(());
        };
        // SQS names the action in lower case (sqs:sendmessage); SNS as SNS:Publish.
        let action = match access.action.split_once(':') {
            Some(("sqs", _)) => access.action.to_ascii_lowercase(),
            Some((_, op)) if access.action.starts_with("sns:") => format!("SNS:{op}"),
            _ => access.action.to_string(),
        };
        let message = denial.message(id.principal_arn(), &action, access.resource);
        match self.mode {
            PolicyMode::Enforce => {
                tracing::debug!(access_key = id.access_key_id(), %message, "access denied");
                Err(message)
            }
            PolicyMode::Log => {
                tracing::warn!(access_key = id.access_key_id(), %message, "policy mode log: would deny");
                Ok(())
            }
        }
    }
}
