//! Outbound fetches to addresses that users choose (handles, did:web hosts): HTTPS only, and
//! only to public unicast addresses, so the server cannot be turned against its own network.
//! Development mode allows plain HTTP and loopback for local testing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("fetch failed: {0}")]
    Failed(String),
}

/// Whether an address is routable on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let c = v4.octets()[2];
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                std::net::Ipv4Addr::new(a, b, c, d)
            };
            // Addresses that carry an IPv4 address reach it: judge that one.
            if segments[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(IpAddr::V4(embedded(segments[6], segments[7])));
                // IPv4-compatible
            }
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(IpAddr::V4(embedded(segments[6], segments[7])));
                // NAT64
            }
            if segments[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(segments[1], segments[2])));
                // 6to4
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first & 0xffc0) == 0xfec0 // site local (deprecated, still routed privately)
                || first == 0x2001 && segments[1] == 0x0db8) // documentation
        }
    }
}

/// What a guarded fetch got back.
pub struct Fetched {
    pub status: u16,
    /// The media type, without parameters, lowercased.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Outbound fetches to user-chosen addresses, with this server's settings: development mode
/// (plain HTTP and loopback allowed) and any extra certificate authorities to trust
/// (AURORA_EXTRA_CA_CERTS, for services behind a private PKI).
#[derive(Clone, Default)]
pub struct Guard {
    dev_mode: bool,
    roots: Arc<Vec<reqwest::Certificate>>,
    /// The DNS server host names are looked up with, when one is configured
    /// (AURORA_DNS_RESOLVER); the system's lookup otherwise.
    dns: Option<Arc<hickory_resolver::TokioResolver>>,
}

impl Guard {
    /// A guard trusting the system's roots and those in the PEM bundle at `extra_ca`, looking
    /// host names up at `dns_server` when given.
    pub fn new(
        dev_mode: bool,
        extra_ca: Option<&std::path::Path>,
        dns_server: Option<std::net::SocketAddr>,
    ) -> Result<Guard, String> {
        let roots = match extra_ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Vec::new(),
        };
        let dns = dns_server.map(|addr| super::resolver::dns_resolver(Some(addr)).map(Arc::new)).transpose()?;
        Ok(Guard { dev_mode, roots: Arc::new(roots), dns })
    }

    pub fn dev_mode(&self) -> bool {
        self.dev_mode
    }

    /// GETs `url` (see [`fetch_guarded`]).
    pub async fn fetch(&self, url: &str, max_bytes: usize) -> Result<Fetched, GuardError> {
        fetch_with(url, self.dev_mode, &self.roots, self.dns.as_deref(), max_bytes).await
    }
}

/// GETs `url`, checking the scheme and every address the host resolves to, and pinning the
/// connection to a checked address so a second DNS answer cannot redirect it. Redirects are
/// not followed. Bodies are capped at `max_bytes`.
pub async fn fetch_guarded(url: &str, dev_mode: bool, max_bytes: usize) -> Result<Fetched, GuardError> {
    fetch_with(url, dev_mode, &[], None, max_bytes).await
}

async fn fetch_with(
    url: &str,
    dev_mode: bool,
    roots: &[reqwest::Certificate],
    dns: Option<&hickory_resolver::TokioResolver>,
    max_bytes: usize,
) -> Result<Fetched, GuardError> {
    let parsed = url::Url::parse(url).map_err(|e| GuardError::Refused(format!("bad URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if dev_mode => {}
        other => return Err(GuardError::Refused(format!("scheme {other} is not allowed"))),
    }
    let host = parsed.host_str().ok_or_else(|| GuardError::Refused("URL has no host".into()))?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let cannot = |e: &dyn std::fmt::Display| GuardError::Failed(format!("cannot resolve {host}: {e}"));
    // `localhost` is never a DNS question (RFC 6761).
    let addrs: Vec<std::net::SocketAddr> = match (dns, host.parse::<IpAddr>()) {
        (Some(dns), Err(_)) if host != "localhost" => {
            let lookup = dns.lookup_ip(host.as_str()).await.map_err(|e| cannot(&e))?;
            lookup.iter().map(|ip| std::net::SocketAddr::new(ip, port)).collect()
        }
        _ => tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| cannot(&e))?.collect(),
    };
    let addr = addrs
        .iter()
        .copied()
        .find(|a| dev_mode || is_public(a.ip()))
        .ok_or_else(|| GuardError::Refused(format!("{host} does not resolve to a public address")))?;
    if !dev_mode && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(GuardError::Refused(format!("{host} resolves to a non-public address")));
    }
    let mut builder = reqwest::Client::builder();
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    let client = builder
        .resolve(&host, addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .user_agent(concat!("aurora-locus/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| GuardError::Failed(e.to_string()))?;
    let mut response = client.get(parsed).send().await.map_err(|e| GuardError::Failed(e.to_string()))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| GuardError::Failed(e.to_string()))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(GuardError::Refused(format!("response larger than {max_bytes} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { status, content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::10.0.0.1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "192.0.0.8",
            "fec0::1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111", "64:ff9b::101:101", "2002:101:101::"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_and_plain_http_are_refused_outside_development_mode() {
        assert!(matches!(fetch_guarded("http://example.com/", false, 1024).await, Err(GuardError::Refused(_))));
        assert!(matches!(fetch_guarded("https://127.0.0.1/", false, 1024).await, Err(GuardError::Refused(_))));
        assert!(matches!(fetch_guarded("https://localhost/", false, 1024).await, Err(GuardError::Refused(_))));
        assert!(matches!(fetch_guarded("file:///etc/passwd", true, 1024).await, Err(GuardError::Refused(_))));
    }
}
