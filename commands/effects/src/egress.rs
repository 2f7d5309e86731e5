//! Outbound HTTP to addresses users give us (external model endpoints, and
//! later webhooks), guarded against server-side request forgery: only http
//! and https, no credentials in the URL, no redirects, no proxies, and every
//! address the host resolves to — checked at connect time, so a DNS answer
//! that changes after validation cannot reach inside — must be public unless
//! an operator allowed its network.

use futures::future::BoxFuture;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("{0}")]
    InvalidUrl(String),
    /// The message names the host, never what it resolved to: a caller
    /// must not learn the addresses of internal names from our errors.
    #[error(
        "{host} is, or resolves to, a non-public address; an operator can allow its network in [external_models] allowed_networks"
    )]
    Forbidden { host: String, addr: IpAddr },
    #[error("{host} does not resolve: {message}")]
    Unresolvable { host: String, message: String },
}

impl EgressError {
    /// Stable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            EgressError::InvalidUrl(_) => "INVALID_INPUT",
            EgressError::Forbidden { .. } => "FORBIDDEN_DESTINATION",
            EgressError::Unresolvable { .. } => "UNREACHABLE",
        }
    }
}

/// Name resolution as the guard sees it: the system's resolver in service,
/// one a test controls to play a hostile DNS.
pub trait Lookup: Send + Sync + std::fmt::Debug {
    fn lookup(&self, host: &str, port: u16)
    -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (getaddrinfo, through tokio).
#[derive(Debug)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host.to_string();
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Non-public networks allowed anyway (a vLLM on the LAN, a local Ollama).
    allowed: Vec<IpNet>,
    lookup: Arc<dyn Lookup>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allowed: vec![],
            lookup: Arc::new(SystemLookup),
        }
    }
}

impl Policy {
    /// The same policy resolving names with `lookup`.
    pub fn with_lookup(self, lookup: Arc<dyn Lookup>) -> Self {
        Self { lookup, ..self }
    }

    pub fn new(allowed_networks: &[String]) -> Result<Self, String> {
        let allowed = allowed_networks
            .iter()
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("allowed_networks: {n:?} is not a CIDR or an address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allowed,
            ..Self::default()
        })
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|n| n.contains(&ip))
    }

    /// Checks a base URL's shape, and its host when it is an address.
    pub fn check_url(&self, raw: &str) -> Result<Url, EgressError> {
        let url = Url::parse(raw).map_err(|e| EgressError::InvalidUrl(format!("{raw:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::InvalidUrl(format!(
                "{raw:?}: only http and https URLs are allowed"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::InvalidUrl(format!(
                "{raw:?}: credentials do not belong in the URL (give the API key separately)"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(EgressError::InvalidUrl(format!(
                "{raw:?}: a base URL has no query or fragment"
            )));
        }
        match url.host() {
            None => Err(EgressError::InvalidUrl(format!("{raw:?}: no host"))),
            Some(url::Host::Ipv4(a)) => self.check_ip(&a.to_string(), IpAddr::V4(a)).map(|_| url),
            Some(url::Host::Ipv6(a)) => self.check_ip(&a.to_string(), IpAddr::V6(a)).map(|_| url),
            Some(url::Host::Domain(_)) => Ok(url),
        }
    }

    fn check_ip(&self, host: &str, addr: IpAddr) -> Result<(), EgressError> {
        if self.allows(addr) {
            Ok(())
        } else {
            Err(EgressError::Forbidden {
                host: host.to_string(),
                addr,
            })
        }
    }

    /// Resolves `url`'s host now and checks every address (for a clear error
    /// when an endpoint is registered; requests are checked again on connect).
    pub async fn check_resolved(&self, url: &Url) -> Result<(), EgressError> {
        let Some(url::Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = resolve(self, host, port).await?;
        drop(addrs);
        Ok(())
    }

    /// An HTTP client that connects only where this policy allows.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(self.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .read_timeout(timeout)
            .user_agent(concat!("finetune-lab/", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

async fn resolve(policy: &Policy, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
    let addrs: Vec<SocketAddr> =
        policy
            .lookup
            .lookup(host, port)
            .await
            .map_err(|e| EgressError::Unresolvable {
                host: host.to_string(),
                message: e.to_string(),
            })?;
    if addrs.is_empty() {
        return Err(EgressError::Unresolvable {
            host: host.to_string(),
            message: "no addresses".into(),
        });
    }
    // All or nothing: a name that resolves to one public and one private
    // address is refused rather than half-trusted.
    if let Some(bad) = addrs.iter().find(|a| !policy.allows(a.ip())) {
        // The operator sees the address; the caller does not.
        tracing::warn!(host, addr = %bad.ip(), "outbound request refused: non-public address");
        return Err(EgressError::Forbidden {
            host: host.to_string(),
            addr: bad.ip(),
        });
    }
    Ok(addrs)
}

struct GuardedResolver(Policy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(&policy, &host, 0).await?;
            let out: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

/// IPv4-mapped and -compatible IPv6 addresses judged as the IPv4 they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Globally routable unicast: not loopback, private, link-local (cloud
/// metadata lives at 169.254.169.254), shared (CGNAT), unspecified,
/// broadcast, multicast, documentation, benchmarking or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 shared
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24 protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
        || o[0] >= 240) // reserved
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (would reach IPv4 inside)
        || (s[0] == 0x2002)) // 6to4 (embeds an IPv4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a} must not be public");
        }
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1"] {
            assert!(is_public(a.parse().unwrap()), "{a} is public");
        }
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let p = Policy::default();
        assert!(p.check_url("https://api.openai.com/v1").is_ok());
        for (url, code) in [
            ("ftp://example.com", "INVALID_INPUT"),
            ("file:///etc/passwd", "INVALID_INPUT"),
            ("https://user:pw@example.com/v1", "INVALID_INPUT"),
            ("https://example.com/v1?x=1", "INVALID_INPUT"),
            ("http://127.0.0.1:11434/v1", "FORBIDDEN_DESTINATION"),
            ("http://[::1]/v1", "FORBIDDEN_DESTINATION"),
            ("http://169.254.169.254/latest", "FORBIDDEN_DESTINATION"),
            ("http://[::ffff:10.0.0.1]/", "FORBIDDEN_DESTINATION"),
        ] {
            assert_eq!(p.check_url(url).unwrap_err().code(), code, "{url}");
        }
        let lan = Policy::new(&["127.0.0.0/8".into(), "10.0.0.5".into()]).unwrap();
        assert!(lan.check_url("http://127.0.0.1:11434/v1").is_ok());
        assert!(lan.check_url("http://10.0.0.5/v1").is_ok());
        assert!(lan.check_url("http://10.0.0.6/v1").is_err());
        assert!(Policy::new(&["not-a-net".into()]).is_err());
    }

    #[tokio::test]
    async fn names_are_checked_where_they_resolve() {
        // `localhost` resolves to loopback: refused by default, at
        // validation and again when a request connects.
        let p = Policy::default();
        let url = p.check_url("http://localhost:9/v1").unwrap();
        let err = p.check_resolved(&url).await.unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN_DESTINATION", "{err}");
        let err = p
            .client(Duration::from_secs(2))
            .unwrap()
            .get("http://localhost:9/v1")
            .send()
            .await
            .unwrap_err();
        let chain = format!("{:?}", anyhow::Error::from(err));
        assert!(chain.contains("non-public"), "{chain}");
        assert!(
            !chain.contains("127.0.0.1"),
            "internal addresses stay unsaid: {chain}"
        );
    }

    /// A DNS the test controls: fixed answers per name, and a name whose
    /// answer changes after its first lookup (DNS rebinding).
    #[derive(Debug, Default)]
    struct HostileDns {
        rebinds: std::sync::atomic::AtomicUsize,
    }

    impl Lookup for HostileDns {
        fn lookup(
            &self,
            host: &str,
            port: u16,
        ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
            let ips: Vec<IpAddr> = match host {
                "public.test" => vec!["93.184.216.34".parse().unwrap()],
                "loopback.test" => vec!["127.0.0.1".parse().unwrap()],
                "private.test" => vec!["10.1.2.3".parse().unwrap()],
                "metadata.test" => vec!["169.254.169.254".parse().unwrap()],
                "mapped.test" => vec!["::ffff:192.168.0.1".parse().unwrap()],
                "v6local.test" => vec!["fd00::1".parse().unwrap()],
                "mixed.test" => vec![
                    "93.184.216.34".parse().unwrap(),
                    "192.168.1.1".parse().unwrap(),
                ],
                "rebind.test" => {
                    let n = self
                        .rebinds
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    vec![
                        if n == 0 { "93.184.216.34" } else { "127.0.0.1" }
                            .parse()
                            .unwrap(),
                    ]
                }
                _ => vec![],
            };
            let out = ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect();
            Box::pin(async move { Ok(out) })
        }
    }

    #[tokio::test]
    async fn hostile_dns_answers_are_refused() {
        let dns = Arc::new(HostileDns::default());
        let p = Policy::default().with_lookup(dns.clone());
        let check = async |raw: &str| {
            let url = p.check_url(raw).unwrap();
            p.check_resolved(&url).await.map_err(|e| e.code())
        };
        assert_eq!(check("https://public.test/v1").await, Ok(()));
        for host in [
            "loopback.test",
            "private.test",
            "metadata.test",
            "mapped.test",
            "v6local.test",
            "mixed.test",
        ] {
            assert_eq!(
                check(&format!("https://{host}/v1")).await,
                Err("FORBIDDEN_DESTINATION"),
                "{host}"
            );
        }
        assert_eq!(check("https://nxdomain.test/v1").await, Err("UNREACHABLE"));
        // Rebinding: public when registered, loopback when the request
        // connects; the connect-time check refuses it.
        assert_eq!(check("http://rebind.test:9/v1").await, Ok(()));
        let err = p
            .client(Duration::from_secs(2))
            .unwrap()
            .get("http://rebind.test:9/v1")
            .send()
            .await
            .unwrap_err();
        let chain = format!("{:?}", anyhow::Error::from(err));
        assert!(chain.contains("non-public"), "{chain}");
        assert!(!chain.contains("127.0.0.1"), "{chain}");
        assert_eq!(dns.rebinds.load(std::sync::atomic::Ordering::SeqCst), 2);
        // An operator's allowed network opens exactly that network.
        let lan = Policy::new(&["10.1.2.0/24".into()])
            .unwrap()
            .with_lookup(dns);
        let url = lan.check_url("https://private.test/v1").unwrap();
        assert!(lan.check_resolved(&url).await.is_ok());
        let url = lan.check_url("https://loopback.test/v1").unwrap();
        assert!(lan.check_resolved(&url).await.is_err());
    }
}
