//! The client's address: the socket's peer, or, when the peer is a proxy the operator trusts,
//! the nearest untrusted address in `X-Forwarded-For`. Trusting a proxy that does not set the
//! header would let any client choose its own address (and so its own rate-limit counters).

use std::net::IpAddr;

use ipnet::IpNet;

/// What AURORA_TRUSTED_PROXIES is when unset: the reference's choice (loopback, link-local
/// and private ranges), where a PDS's reverse proxy lives.
pub const DEFAULT_TRUSTED: &str = "loopback,linklocal,uniquelocal";

/// Parses a comma-separated list of addresses, CIDR ranges and the names `loopback`,
/// `linklocal` and `uniquelocal`; `none` is the empty list.
pub fn parse_ranges(raw: &str) -> Result<Vec<IpNet>, String> {
    let mut ranges = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let named: &[&str] = match item {
            "none" => &[],
            "loopback" => &["127.0.0.0/8", "::1/128"],
            "linklocal" => &["169.254.0.0/16", "fe80::/10"],
            "uniquelocal" => &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
            _ => {
                let range = match item.parse::<IpNet>() {
                    Ok(range) => range,
                    Err(_) => item
                        .parse::<IpAddr>()
                        .map(IpNet::from)
                        .map_err(|_| format!("{item:?} is not an IP address or CIDR range"))?,
                };
                ranges.push(range);
                continue;
            }
        };
        ranges.extend(named.iter().filter_map(|r| r.parse::<IpNet>().ok()));
    }
    Ok(ranges)
}

/// The client of a request from `peer` carrying `forwarded_for`.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|range| range.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Right to left: each hop appended the address it received the request from.
    for hop in forwarded_for.unwrap_or_default().rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = canonical(ip);
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// IPv4 addresses arriving on an IPv6 socket as `::ffff:a.b.c.d` are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = parse_ranges(DEFAULT_TRUSTED).expect("ranges");
        assert_eq!(resolve(ip("203.0.113.9"), Some("198.51.100.1"), &trusted), ip("203.0.113.9"));
        assert_eq!(resolve(ip("127.0.0.1"), Some("198.51.100.1"), &trusted), ip("198.51.100.1"));
        // A client's own forged entry sits left of what the proxy appended.
        assert_eq!(resolve(ip("127.0.0.1"), Some("1.2.3.4, 198.51.100.1"), &trusted), ip("198.51.100.1"));
        assert_eq!(resolve(ip("127.0.0.1"), Some("198.51.100.1, 10.0.0.2"), &trusted), ip("198.51.100.1"));
        assert_eq!(resolve(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        assert_eq!(resolve(ip("127.0.0.1"), Some("198.51.100.1"), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn ranges_parse_from_names_addresses_and_cidrs() {
        let ranges = parse_ranges("loopback, 203.0.113.0/24, 2001:db8::1").expect("ranges");
        assert!(ranges.iter().any(|r| r.contains(&ip("203.0.113.7"))));
        assert!(ranges.iter().any(|r| r.contains(&ip("2001:db8::1"))));
        assert!(parse_ranges("none").expect("none").is_empty());
        assert!(parse_ranges("not-an-ip").is_err());
    }
}
