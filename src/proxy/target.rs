//! Where a proxied call goes: the service an `atproto-proxy` header names (resolved through
//! the DID's document), or the configured default for the method.

use std::net::SocketAddr;

use aurora_xrpc::XrpcError;

use crate::context::AppContext;
use crate::identity::guard::is_public;

/// A service to forward to: its DID (the token audience) and base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub did: String,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    BadHeader(&'static str),
    #[error("could not resolve proxy did")]
    Unresolvable,
    #[error("could not resolve proxy did service url")]
    NoService,
    #[error("proxy target must be a public https service")]
    Refused,
}

impl TargetError {
    pub fn into_xrpc(self) -> XrpcError {
        XrpcError::invalid_request(self.to_string())
    }
}

/// The default service for `nsid`, as the reference routes it: moderation tooling to the
/// moderation service, reports to the report service, chat to the chat service when one is
/// configured, everything else to the AppView.
pub fn default_for(ctx: &AppContext, nsid: &str) -> Option<Target> {
    let config = &ctx.config;
    let service = if nsid.starts_with("tools.ozone.") {
        config.mod_service.as_ref()
    } else if nsid == "com.atproto.moderation.createReport" {
        config.report_service.as_ref()
    } else if nsid.starts_with("chat.bsky.") && config.chat_service.is_some() {
        config.chat_service.as_ref()
    } else {
        config.bsky_app_view.as_ref()
    };
    service.map(|(url, did)| Target { did: did.clone(), url: url.clone() })
}

/// Which configured service `target` is, for the metrics (a bounded label, whatever DID a
/// client's header named).
pub fn kind(ctx: &AppContext, target: &Target) -> &'static str {
    let config = &ctx.config;
    let is = |service: Option<&(String, String)>| service.is_some_and(|(_, did)| *did == target.did);
    if is(config.bsky_app_view.as_ref()) {
        "appview"
    } else if is(config.chat_service.as_ref()) {
        "chat"
    } else if is(config.mod_service.as_ref()) {
        "moderation"
    } else if is(config.report_service.as_ref()) {
        "report"
    } else {
        "other"
    }
}

/// The service a call without an `atproto-proxy` header goes to, as `did#service-id` (what an
/// OAuth token's `rpc:` permission must name).
pub fn default_audience(ctx: &AppContext, nsid: &str, target: &Target) -> String {
    let id = if nsid.starts_with("tools.ozone.") || nsid == "com.atproto.moderation.createReport" {
        "atproto_labeler"
    } else if nsid.starts_with("chat.bsky.") && ctx.config.chat_service.is_some() {
        "bsky_chat"
    } else {
        "bsky_appview"
    };
    format!("{}#{id}", target.did)
}

/// Parses `did#service-id` and finds the service's endpoint.
pub async fn from_header(ctx: &AppContext, header: &str) -> Result<Target, TargetError> {
    if header.contains(' ') {
        return Err(TargetError::BadHeader("proxy header cannot contain spaces"));
    }
    let (did, id) = match header.split_once('#') {
        None => return Err(TargetError::BadHeader("no service id specified in proxy header")),
        Some(("", _)) => return Err(TargetError::BadHeader("no did specified in proxy header")),
        Some((_, "")) => return Err(TargetError::BadHeader("no service id specified in proxy header")),
        Some((_, id)) if id.contains('#') => return Err(TargetError::BadHeader("invalid proxy header format")),
        Some(parts) => parts,
    };
    let Ok(parsed) = did.parse::<aurora_xrpc::codegen::Did>() else {
        return Err(TargetError::BadHeader("invalid did in proxy header"));
    };
    // The configured AppView needs no lookup.
    if let Some((url, app_view)) = &ctx.config.bsky_app_view {
        if did == app_view && id == "bsky_appview" {
            return Ok(Target { did: did.to_owned(), url: url.clone() });
        }
    }
    let doc = ctx.resolver.did_doc(&parsed, false).await.map_err(|_| TargetError::Unresolvable)?;
    let url = crate::identity::doc::service_endpoint(did, &doc, id).ok_or(TargetError::NoService)?;
    Ok(Target { did: did.to_owned(), url })
}

/// Outside development mode a target must be `https` and, when its host is an address rather
/// than a name (which the resolver below never sees), a public one.
pub fn check_url(url: &str, dev_mode: bool) -> Result<(), TargetError> {
    if dev_mode {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|_| TargetError::Refused)?;
    if parsed.scheme() != "https" {
        return Err(TargetError::Refused);
    }
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) if !is_public(ip.into()) => Err(TargetError::Refused),
        Some(url::Host::Ipv6(ip)) if !is_public(ip.into()) => Err(TargetError::Refused),
        Some(_) => Ok(()),
        None => Err(TargetError::Refused),
    }
}

/// A DNS resolver for the proxy client that refuses names resolving to anything but public
/// unicast addresses, so a DID document cannot point the server at its own network.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(format!("{host} does not resolve only to public addresses").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::dns::Resolve;

    use super::*;

    #[test]
    fn targets_outside_development_mode_are_public_https_services() {
        for url in ["http://example.com", "https://127.0.0.1", "https://10.1.2.3:8443", "https://[::1]", "file:///etc"]
        {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        assert!(check_url("https://api.bsky.app", false).is_ok());
        assert!(check_url("http://127.0.0.1:2584", true).is_ok(), "development mode allows loopback");
    }

    #[tokio::test]
    async fn the_proxy_resolver_refuses_names_of_private_addresses() {
        for name in ["localhost"] {
            let resolved = PublicOnly.resolve(name.parse().expect("name")).await;
            assert!(resolved.is_err(), "{name} resolved");
        }
    }
}
