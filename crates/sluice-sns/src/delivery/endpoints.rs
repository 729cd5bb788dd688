//! Which addresses HTTP(S) subscriptions may reach (the SSRF guard). Without it, anyone who can
//! call Subscribe (or a web page that gets a browser to) makes sluice POST to loopback services,
//! the LAN or the cloud metadata address (169.254.169.254).
//!
//! [`EndpointPolicy`] refuses every address that is not globally routable — loopback, RFC 1918 and
//! other private ranges, link-local (the metadata address included), unspecified, multicast,
//! documentation and reserved ranges, and their IPv6 counterparts (IPv4-mapped and NAT64 addresses
//! are judged by the IPv4 address inside) — unless the operator allows them:
//! `--sns-allow-private-endpoints` allows them all, `--sns-allowed-networks` some CIDR blocks.
//!
//! Checked twice: at Subscribe ([`EndpointPolicy::check_endpoint`]: the URL's host, resolved if it
//! is a name, answers `InvalidParameter`), and at every connection ([`GuardedResolver`] and
//! `Connector::call` in [`super::http`]), because a name's DNS answer can change after Subscribe
//! (DNS rebinding): a delivery only ever connects to an address the policy allows.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;

/// What HTTP(S) subscriptions may reach besides the public internet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Every address allowed (`--sns-allow-private-endpoints`).
    pub allow_private: bool,
    /// Non-public blocks allowed one by one (`--sns-allowed-networks`).
    pub allowed_networks: Vec<IpNet>,
}

/// The hint every refusal carries: how the operator allows the address.
const HOW_TO_ALLOW: &str = "sluice refuses loopback, private and link-local subscriber addresses; allow them with \
     --sns-allow-private-endpoints or --sns-allowed-networks (SLUICE_SNS_ALLOW_PRIVATE_ENDPOINTS, \
     SLUICE_SNS_ALLOWED_NETWORKS)";

impl EndpointPolicy {
    /// Everything allowed: tests whose subscribers listen on 127.0.0.1.
    pub fn allow_all() -> EndpointPolicy {
        EndpointPolicy { allow_private: true, allowed_networks: Vec::new() }
    }

    /// Parses the `--sns-allowed-networks` entries: CIDR blocks (`10.0.0.0/8`, `fd00::/8`) or
    /// single addresses.
    pub fn new(allow_private: bool, networks: &[String]) -> Result<EndpointPolicy, String> {
        let mut allowed_networks = Vec::new();
        for entry in networks.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(format!("sns_allowed_networks: {entry:?} is not a CIDR block or address")),
                },
            };
            allowed_networks.push(net.trunc());
        }
        Ok(EndpointPolicy { allow_private, allowed_networks })
    }

    /// True when deliveries may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.allowed_networks.iter().any(|n| n.contains(&ip))
    }

    /// The refusal of `ip`, for logs and delivery failures.
    pub fn refusal(ip: IpAddr) -> String {
        format!("address {ip} is not a public address ({HOW_TO_ALLOW})")
    }

    /// Subscribe's check of an `http(s)://` endpoint: its host, or the addresses a name resolves
    /// to now (`localhost` included). A name that does not resolve is accepted (AWS accepts it too; the delivery fails and
    /// is retried, and the connection-time check still applies). Err: the `InvalidParameter`
    /// message.
    pub async fn check_endpoint(&self, endpoint: &str) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        let refused = || format!("Invalid parameter: Unreachable Endpoint ({HOW_TO_ALLOW})");
        let uri: hyper::Uri = endpoint.parse().map_err(|_| "Invalid parameter: Endpoint".to_string())?;
        let Some(host) = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
        else {
            return Err("Invalid parameter: Endpoint".into());
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.allows(ip) { Ok(()) } else { Err(refused()) };
        }
        let host = host.trim_end_matches('.');
        let port = uri.port_u16().unwrap_or(80);
        let lookup = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port))).await;
        if let Ok(Ok(addrs)) = lookup {
            let addrs: Vec<SocketAddr> = addrs.collect();
            // As at delivery: refused when no address is allowed (a name with a public address
            // and a private one is delivered to the public one only).
            if !addrs.is_empty() && !addrs.iter().any(|a| self.allows(a.ip())) {
                return Err(refused());
            }
        }
        Ok(())
    }
}

/// True for globally routable unicast addresses: what SNS may reach without the operator's leave.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0                       // "this network", 0.0.0.0 unspecified
        || a == 10                             // RFC 1918
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), RFC 6598
        || (a == 169 && b == 254)              // link-local, the cloud metadata address
        || (a == 172 && (16..32).contains(&b)) // RFC 1918
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
        || (a == 192 && b == 168)              // RFC 1918
        || (a == 198 && (b == 18 || b == 19))  // benchmarking
        || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96)
    // and 6to4 (2002:AABB:CCDD::/48) addresses reach an IPv4 address: judge that one.
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return ip != Ipv6Addr::UNSPECIFIED && ip != Ipv6Addr::LOCALHOST && is_public_v4(v4_of(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(v4_of(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(v4_of(s[1], s[2]));
    }
    let special = (s[0] & 0xfe00) == 0xfc00  // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80         // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0         // site-local fec0::/10 (deprecated)
        || (s[0] & 0xff00) == 0xff00         // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..4] == [0x0100, 0, 0, 0]; // discard-only 100::/64
    !special
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
}

/// The delivery client's DNS resolver: resolves a name (getaddrinfo on tokio's blocking pool) and
/// keeps only the addresses the policy allows, so a name that points somewhere else since
/// Subscribe cannot take a delivery there. None allowed: the connection fails (a failed delivery,
/// retried, then dead-lettered).
#[derive(Clone)]
pub struct GuardedResolver {
    pub(crate) policy: Arc<EndpointPolicy>,
}

type ResolveFuture = Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = ResolveFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            // Port 0: the connector sets the URL's port on each address.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved.iter().copied().filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() {
                if let Some(first) = resolved.first() {
                    tracing::warn!(host, address = %first.ip(), "SNS delivery refused: {}", EndpointPolicy::refusal(first.ip()));
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!("{host}: {}", EndpointPolicy::refusal(first.ip())),
                    ));
                }
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass_by_default() {
        let refused = [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "ff02::1",
        ];
        let policy = EndpointPolicy::default();
        for ip in refused {
            assert!(!policy.allows(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(policy.allows(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn the_operator_allows_networks_or_everything() {
        let policy = EndpointPolicy::new(false, &["127.0.0.0/8".into(), " ::1 ".into(), "10.0.0.7".into()]).unwrap();
        assert!(policy.allows("127.0.0.1".parse().unwrap()));
        assert!(policy.allows("::1".parse().unwrap()));
        assert!(policy.allows("10.0.0.7".parse().unwrap()));
        assert!(!policy.allows("10.0.0.8".parse().unwrap()));
        assert!(!policy.allows("169.254.169.254".parse().unwrap()));
        assert!(EndpointPolicy::new(false, &["10.0.0.0/33".into()]).is_err());
        assert!(EndpointPolicy::new(false, &["intranet".into()]).is_err());
        assert!(EndpointPolicy::allow_all().allows("169.254.169.254".parse().unwrap()));
    }

    #[tokio::test]
    async fn subscribe_checks_literals_and_names() {
        let strict = EndpointPolicy::default();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::1]/x",
            "http://10.0.0.1/",
            "http://localhost:9/x",
            "http://LOCALHOST./x",
        ] {
            let e = strict.check_endpoint(url).await.unwrap_err();
            assert!(e.starts_with("Invalid parameter: Unreachable Endpoint"), "{url}: {e}");
        }
        assert!(strict.check_endpoint("https://8.8.8.8/hook").await.is_ok());
        let local = EndpointPolicy::new(false, &["127.0.0.0/8".into()]).unwrap();
        assert!(local.check_endpoint("http://127.0.0.1:8080/hook").await.is_ok());
        assert!(local.check_endpoint("http://169.254.169.254/").await.is_err());
    }

    /// The connection-time check: whatever Subscribe accepted, a delivery never connects to a
    /// refused address, be it an IP literal (checked by the connector) or a name (the resolver
    /// drops the address): the sink on 127.0.0.1 receives nothing until the policy allows it.
    #[tokio::test]
    async fn deliveries_connect_only_to_allowed_addresses() {
        use crate::delivery::http::{http_client, post};
        let (url, mut posts) = crate::test_support::http_sink().await;
        let by_name = url.replace("127.0.0.1", "localhost");
        let strict = http_client(None, EndpointPolicy::default()).unwrap();
        for target in [&url, &by_name] {
            let e = post(&strict, target, &[], "secret".into()).await.unwrap_err();
            assert!(e.contains("is not a public address"), "{target}: {e}");
        }
        assert!(posts.try_recv().is_err(), "nothing may reach the refused address");
        let local = EndpointPolicy::new(false, &["127.0.0.0/8".into(), "::1".into()]).unwrap();
        let allowed = http_client(None, local).unwrap();
        assert_eq!(post(&allowed, &url, &[], "hello".into()).await, Ok(200));
        assert_eq!(posts.recv().await.as_deref(), Some("hello"));
    }

    /// Subscribe answers InvalidParameter for a loopback or metadata endpoint, and nothing is
    /// stored; with the operator's leave the same Subscribe works.
    #[tokio::test]
    async fn subscribe_refuses_private_endpoints_unless_allowed() {
        use crate::test_support::*;
        let engine = engine();
        let sns = crate::Sns::open(engine.clone(), crate::SnsOptions::default()).unwrap();
        let (status, body) = call(&sns, "Action=CreateTopic&Version=2010-03-31&Name=t").await;
        assert_eq!(status, 200, "{body}");
        let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:t");
        let (sink, _posts) = http_sink().await;
        for endpoint in [sink.as_str(), "http://169.254.169.254/latest/meta-data/"] {
            let subscribe = format!(
                "Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=http&Endpoint={}",
                enc(&topic),
                enc(endpoint)
            );
            let (status, body) = call(&sns, &subscribe).await;
            assert_eq!(status, 400, "{body}");
            assert!(body.contains("<Code>InvalidParameter</Code>"), "{body}");
            assert!(body.contains("Invalid parameter: Unreachable Endpoint"), "{body}");
        }
        let (_, list) = call(&sns, "Action=ListSubscriptions&Version=2010-03-31").await;
        assert!(!list.contains("<Endpoint>"), "{list}");
        let sns = crate::Sns::open(engine.clone(), local_subscribers()).unwrap();
        let subscribe = format!(
            "Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=http&Endpoint={}",
            enc(&topic),
            enc(&sink)
        );
        let (status, body) = call(&sns, &subscribe).await;
        assert_eq!(status, 200, "{body}");
    }
}
