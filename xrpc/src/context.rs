//! What a service method learns about the request besides its typed parameters and input.

use poem::http::{HeaderMap, Method};

/// The client's address as the server decided it (behind a trusted proxy, from
/// `X-Forwarded-For`), set on the request's extensions before routing; the socket's peer
/// address otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// The request as a service method sees it: headers (for auth, proxying and content
/// negotiation) and where it came from.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub nsid: &'static str,
    pub headers: HeaderMap,
    /// The client's address (see [`ClientIp`]).
    pub remote_addr: Option<std::net::IpAddr>,
    /// The HTTP method and path, which a DPoP proof must name.
    pub method: Method,
    pub path: String,
}

impl RequestContext {
    pub fn new(nsid: &'static str, headers: HeaderMap, remote_addr: Option<std::net::IpAddr>) -> Self {
        Self { nsid, headers, remote_addr, method: Method::GET, path: format!("/xrpc/{nsid}") }
    }

    /// The same context for a request made with `method` to `path`.
    pub fn with_target(self, method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), ..self }
    }

    /// A header as a string, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bearer token of the `Authorization` header, if any.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    }
}
