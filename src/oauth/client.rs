//! OAuth clients. A client is named by the URL of its metadata document, fetched (through the
//! SSRF guard, bounded in size and time), validated and cached; or, for development, by
//! `http://localhost?…`, whose metadata the server derives from the id itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::OAuthError;
use super::jose::{Jwk, Jws};

/// How long fetched metadata is kept.
const CACHE_SECS: i64 = 600;
/// How many clients are kept at most.
const CACHE_ENTRIES: usize = 1000;
/// The largest metadata document or key set fetched.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// How old a client assertion may be.
const MAX_ASSERTION_AGE_SECS: i64 = 60;
/// Domains the reference refuses as client ids.
const FORBIDDEN_DOMAINS: [&str; 4] = ["example.com", "example.org", "example.net", "googleusercontent.com"];
/// Top-level domains that never name a public host.
const LOCAL_TLDS: [&str; 7] = ["test", "local", "localhost", "invalid", "example", "internal", "arpa"];

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's metadata document (RFC 7591 fields atproto uses), defaults filled in.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default = "default_response_types")]
    pub response_types: Vec<String>,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: String,
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default = "default_application_type")]
    pub application_type: String,
    #[serde(default)]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub subject_type: Option<String>,
    /// Fields atproto clients may not use; present means refused.
    #[serde(flatten)]
    pub rest: HashMap<String, Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct JwkSet {
    pub keys: Vec<Value>,
}

fn default_response_types() -> Vec<String> {
    vec!["code".to_owned()]
}
fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".to_owned()]
}
fn default_auth_method() -> String {
    "client_secret_basic".to_owned()
}
fn default_application_type() -> String {
    "web".to_owned()
}

/// A client, its metadata validated.
#[derive(Debug)]
pub struct Client {
    pub id: String,
    pub metadata: ClientMetadata,
    /// A development client (`http://localhost…`).
    pub loopback: bool,
    /// The keys its assertions are signed with (private_key_jwt).
    keys: Vec<Jwk>,
}

/// How a client authenticated a request; stored with a grant so later requests must match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum ClientAuth {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "private_key_jwt")]
    PrivateKeyJwt { kid: String, alg: String, jkt: String },
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.metadata.token_endpoint_auth_method == "private_key_jwt"
    }

    /// What to call the client on pages: its name, else its id's host.
    pub fn display_name(&self) -> String {
        if self.loopback {
            return "An app on your computer (development)".to_owned();
        }
        if let Some(name) = self.metadata.client_name.as_ref().filter(|n| !n.trim().is_empty()) {
            return name.trim().to_owned();
        }
        url::Url::parse(&self.id).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| self.id.clone())
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.metadata.grant_types.iter().any(|g| g == grant)
    }

    /// The scope tokens the client declared.
    pub fn declared_scopes(&self) -> Vec<&str> {
        self.metadata.scope.as_deref().unwrap_or_default().split(' ').filter(|s| !s.is_empty()).collect()
    }

    /// The redirect URI to use: `requested` when registered (a loopback URI registered without
    /// a port matches any port), else the only registered one when none was asked for.
    pub fn redirect_uri(&self, requested: Option<&str>) -> Result<String, OAuthError> {
        match requested {
            Some(uri) if self.metadata.redirect_uris.iter().any(|registered| redirect_matches(registered, uri)) => {
                Ok(uri.to_owned())
            }
            Some(uri) => Err(OAuthError::invalid_request(format!("Invalid redirect_uri {uri}"))),
            None => match self.metadata.redirect_uris.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(OAuthError::invalid_request("redirect_uri is required")),
            },
        }
    }

    /// Checks the request's client credentials: nothing for a public client, a signed assertion
    /// (fresh, for this server, never seen before) for a confidential one.
    pub async fn authenticate(
        &self,
        ctx: &crate::context::AppContext,
        assertion_type: Option<&str>,
        assertion: Option<&str>,
        now: i64,
    ) -> Result<ClientAuth, OAuthError> {
        if !self.is_confidential() {
            return Ok(ClientAuth::None);
        }
        let (Some(ASSERTION_TYPE), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "client authentication method \"private_key_jwt\" required a \"client_assertion\"",
            ));
        };
        let failed =
            |why: &str| OAuthError::invalid_client(format!("Validation of \"client_assertion\" failed: {why}"));
        let jws = Jws::parse(assertion).ok_or_else(|| failed("malformed JWT"))?;
        let kid =
            jws.header.kid.clone().ok_or_else(|| OAuthError::invalid_client("\"kid\" required in client_assertion"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid.as_str()) && k.algorithm() == Some(jws.header.alg.as_str()))
            .ok_or_else(|| failed("no matching key"))?;
        let public = key.public_key().ok_or_else(|| failed("unsupported key"))?;
        if !jws.verify(&public) {
            return Err(failed("signature verification failed"));
        }
        #[derive(Deserialize)]
        struct Claims {
            iss: Option<String>,
            sub: Option<String>,
            aud: Option<Value>,
            jti: Option<String>,
            iat: Option<i64>,
            exp: Option<i64>,
            nbf: Option<i64>,
        }
        let claims: Claims = jws.claims().ok_or_else(|| failed("malformed claims"))?;
        if claims.iss.as_deref() != Some(self.id.as_str()) || claims.sub.as_deref() != Some(self.id.as_str()) {
            return Err(failed("iss and sub must be the client_id"));
        }
        let issuer = ctx.config.public_url.trim_end_matches('/');
        let for_us = match &claims.aud {
            Some(Value::String(aud)) => aud == issuer,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(issuer)),
            _ => false,
        };
        if !for_us {
            return Err(failed("unexpected \"aud\" claim value"));
        }
        let jti = claims.jti.ok_or_else(|| failed("missing \"jti\""))?;
        let iat = claims.iat.ok_or_else(|| failed("missing \"iat\""))?;
        if iat < now - MAX_ASSERTION_AGE_SECS || iat > now + MAX_ASSERTION_AGE_SECS {
            return Err(failed("\"iat\" claim timestamp check failed"));
        }
        if claims.exp.is_some_and(|exp| exp < now) || claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(failed("the assertion is not valid at this time"));
        }
        let keep_until = claims.exp.unwrap_or(iat + MAX_ASSERTION_AGE_SECS + 6).max(now);
        let fresh = super::replay::first_use_stored(
            &ctx.db,
            "client_assertion",
            &format!("{}:{jti}", self.id),
            keep_until,
            now,
        )
        .await
        .map_err(OAuthError::server_error)?;
        if !fresh {
            return Err(OAuthError::invalid_grant("private_key_jwt jti reused"));
        }
        Ok(ClientAuth::PrivateKeyJwt { kid, alg: jws.header.alg.clone(), jkt: key.thumbprint() })
    }

    /// Checks that a later request authenticates as the grant's first did (a public client may
    /// become confidential, never the other way).
    pub fn same_auth(&self, started: &ClientAuth, now: &ClientAuth) -> Result<(), OAuthError> {
        match (started, now) {
            (ClientAuth::None, _) => Ok(()),
            (a, b) if a == b => Ok(()),
            _ => Err(OAuthError::invalid_grant(
                "The session was initiated with a different key than the client assertion currently used",
            )),
        }
    }
}

/// Whether `uri` matches the registered `registered`: exactly, or a loopback URI registered
/// without a port used with one.
fn redirect_matches(registered: &str, uri: &str) -> bool {
    if registered == uri {
        return true;
    }
    let (Ok(registered), Ok(mut uri)) = (url::Url::parse(registered), url::Url::parse(uri)) else { return false };
    let loopback = matches!(registered.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
    if !loopback || registered.port().is_some() {
        return false;
    }
    if uri.set_port(None).is_err() {
        return false;
    }
    uri == registered
}

/// Clients fetched recently.
#[derive(Default)]
pub struct ClientCache {
    entries: Mutex<HashMap<String, (i64, Arc<Client>)>>,
}

impl ClientCache {
    fn get(&self, id: &str, now: i64) -> Option<Arc<Client>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(id).filter(|(expires, _)| *expires > now).map(|(_, client)| client.clone())
    }

    fn put(&self, client: Arc<Client>, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (expires, _)| *expires > now);
        if entries.len() >= CACHE_ENTRIES {
            if let Some(oldest) = entries.iter().min_by_key(|(_, (expires, _))| *expires).map(|(k, _)| k.clone()) {
                entries.remove(&oldest);
            }
        }
        entries.insert(client.id.clone(), (now + CACHE_SECS, client));
    }
}

/// The client `client_id` names, its metadata fetched or derived and validated.
pub async fn load(ctx: &crate::context::AppContext, client_id: &str, now: i64) -> Result<Arc<Client>, OAuthError> {
    if client_id.starts_with("http://localhost") {
        return loopback(client_id).map(Arc::new);
    }
    let url = discoverable(client_id, ctx.config.dev_mode)?;
    if let Some(client) = ctx.oauth.clients.get(client_id, now) {
        return Ok(client);
    }
    let unobtainable = |why: String| {
        OAuthError::invalid_client_metadata(format!("Unable to obtain client metadata for \"{client_id}\": {why}"))
    };
    let fetched = ctx.guard.fetch(url.as_str(), MAX_DOCUMENT_BYTES).await.map_err(|e| unobtainable(e.to_string()))?;
    if !(200..300).contains(&fetched.status) {
        return Err(unobtainable(format!("the server answered {}", fetched.status)));
    }
    if fetched.content_type.as_deref() != Some("application/json") {
        return Err(unobtainable("the document is not application/json".to_owned()));
    }
    let metadata: ClientMetadata =
        serde_json::from_slice(&fetched.body).map_err(|e| unobtainable(format!("invalid metadata: {e}")))?;
    if metadata.client_id.as_deref() != Some(client_id) {
        return Err(OAuthError::invalid_client_metadata(
            "client_id in the metadata must be the client_id it is fetched from",
        ));
    }
    validate(client_id, &metadata, ctx.config.dev_mode)?;
    let keys = match (&metadata.jwks, &metadata.jwks_uri) {
        (Some(set), _) => parse_keys(&set.keys),
        (None, Some(uri)) => {
            let fetched =
                ctx.guard.fetch(uri, MAX_DOCUMENT_BYTES).await.map_err(|e| unobtainable(format!("jwks_uri: {e}")))?;
            let set: JwkSet =
                serde_json::from_slice(&fetched.body).map_err(|e| unobtainable(format!("jwks_uri: {e}")))?;
            parse_keys(&set.keys)
        }
        (None, None) => Vec::new(),
    };
    if metadata.token_endpoint_auth_method == "private_key_jwt" && keys.is_empty() {
        return Err(OAuthError::invalid_client_metadata(
            "private_key_jwt clients must publish at least one usable key",
        ));
    }
    let client = Arc::new(Client { id: client_id.to_owned(), metadata, loopback: false, keys });
    ctx.oauth.clients.put(client.clone(), now);
    Ok(client)
}

/// The public keys of a key set this server can verify with.
fn parse_keys(keys: &[Value]) -> Vec<Jwk> {
    keys.iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| k.public_key().is_some() && k.kid.is_some())
        .collect()
}

/// A development client: `http://localhost[/][?scope=…&redirect_uri=…]`.
fn loopback(client_id: &str) -> Result<Client, OAuthError> {
    let invalid = || OAuthError::invalid_client_metadata(format!("Invalid client ID \"{client_id}\""));
    let rest = client_id.strip_prefix("http://localhost").ok_or_else(invalid)?;
    let query = match rest {
        "" | "/" => None,
        _ => Some(rest.strip_prefix("/?").or_else(|| rest.strip_prefix('?')).ok_or_else(invalid)?),
    };
    let mut scope = None;
    let mut redirect_uris = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "scope" if scope.is_none() => scope = Some(value.into_owned()),
            "redirect_uri" => {
                let uri = url::Url::parse(&value).map_err(|_| invalid())?;
                let loopback_ip = matches!(uri.host_str(), Some("127.0.0.1") | Some("[::1]"));
                if uri.scheme() != "http" || !loopback_ip {
                    return Err(invalid());
                }
                redirect_uris.push(value.into_owned());
            }
            _ => return Err(invalid()),
        }
    }
    if let Some(scope) = &scope {
        if !aurora_atproto::permission::is_scope_parameter(scope) || !scope.split(' ').any(|s| s == "atproto") {
            return Err(invalid());
        }
    }
    if redirect_uris.is_empty() {
        redirect_uris = vec!["http://127.0.0.1/".to_owned(), "http://[::1]/".to_owned()];
    }
    let metadata = ClientMetadata {
        client_id: Some(client_id.to_owned()),
        client_name: None,
        client_uri: None,
        logo_uri: None,
        tos_uri: None,
        policy_uri: None,
        redirect_uris,
        response_types: default_response_types(),
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        scope: Some(scope.unwrap_or_else(|| "atproto".to_owned())),
        token_endpoint_auth_method: "none".to_owned(),
        token_endpoint_auth_signing_alg: None,
        application_type: "native".to_owned(),
        dpop_bound_access_tokens: Some(true),
        jwks: None,
        jwks_uri: None,
        subject_type: None,
        rest: HashMap::new(),
    };
    Ok(Client { id: client_id.to_owned(), metadata, loopback: true, keys: Vec::new() })
}

/// A client id that names a metadata document: an `https` URL with a path, in canonical form,
/// on a public host name. Development mode also takes `http` ones on loopback hosts, so a
/// test can serve a confidential client's metadata.
fn discoverable(client_id: &str, dev_mode: bool) -> Result<url::Url, OAuthError> {
    let invalid = || OAuthError::invalid_client_metadata(format!("Invalid client ID \"{client_id}\""));
    let url = url::Url::parse(client_id).map_err(|_| invalid())?;
    let host = url.host_str().ok_or_else(invalid)?.to_ascii_lowercase();
    let local = dev_mode && matches!(host.as_str(), "127.0.0.1" | "localhost");
    if url.scheme() != "https" && !(local && url.scheme() == "http") {
        return Err(invalid());
    }
    if url.as_str() != client_id || url.path() == "/" || url.path().ends_with('/') || url.fragment().is_some() {
        return Err(invalid());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid());
    }
    if local {
        return Ok(url);
    }
    if url.host().is_some_and(|h| !matches!(h, url::Host::Domain(_))) {
        return Err(invalid());
    }
    let tld = host.rsplit('.').next().unwrap_or_default();
    if !host.contains('.') || LOCAL_TLDS.contains(&tld) {
        return Err(OAuthError::invalid_client_id("The client_id's TLD must not be a local hostname"));
    }
    if FORBIDDEN_DOMAINS.iter().any(|d| host == *d || host.ends_with(&format!(".{d}"))) {
        return Err(OAuthError::invalid_client_id("Forbidden hostname"));
    }
    Ok(url)
}

/// Checks a metadata document against what an atproto client may declare. Development mode
/// also lets web clients redirect to `https://localhost`.
fn validate(client_id: &str, metadata: &ClientMetadata, dev_mode: bool) -> Result<(), OAuthError> {
    let invalid = |why: &str| Err(OAuthError::invalid_client_metadata(why.to_owned()));
    for refused in [
        "default_max_age",
        "userinfo_signed_response_alg",
        "id_token_signed_response_alg",
        "userinfo_encrypted_response_alg",
        "authorization_encrypted_response_enc",
        "tls_client_certificate_bound_access_tokens",
        "authorization_details_types",
    ] {
        if metadata.rest.contains_key(refused) {
            return invalid(&format!("Unsupported \"{refused}\""));
        }
    }
    if metadata.redirect_uris.is_empty() {
        return invalid("At least one redirect_uri is required");
    }
    if metadata.jwks.is_some() && metadata.jwks_uri.is_some() {
        return invalid("jwks_uri and jwks are mutually exclusive");
    }
    let scope = metadata.scope.as_deref().unwrap_or_default();
    let tokens: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if !tokens.contains(&"atproto") {
        return invalid("Client metadata must include the \"atproto\" scope");
    }
    if tokens.iter().enumerate().any(|(i, t)| tokens[..i].contains(t)) {
        return invalid("Duplicate scope");
    }
    let grants = &metadata.grant_types;
    if grants.iter().enumerate().any(|(i, g)| grants[..i].contains(g)) {
        return invalid("Duplicate grant type");
    }
    if let Some(other) = grants.iter().find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token")) {
        return invalid(&format!("Grant type \"{other}\" is not allowed"));
    }
    if !metadata.response_types.iter().any(|r| r == "code") {
        return invalid("response_types must include \"code\"");
    }
    if !grants.iter().any(|g| g == "authorization_code") {
        return invalid("The \"code\" response type requires the \"authorization_code\" grant type");
    }
    if metadata.subject_type.as_deref().is_some_and(|s| s != "public") {
        return invalid("Only \"public\" subject_type is supported");
    }
    if metadata.dpop_bound_access_tokens != Some(true) {
        return invalid("\"dpop_bound_access_tokens\" must be true");
    }
    match metadata.token_endpoint_auth_method.as_str() {
        "none" if metadata.token_endpoint_auth_signing_alg.is_some() => {
            return invalid(
                "token_endpoint_auth_signing_alg must not be provided when token_endpoint_auth_method is \"none\"",
            )
        }
        "none" => {}
        "private_key_jwt" => {
            if metadata.jwks.as_ref().is_none_or(|s| s.keys.is_empty()) && metadata.jwks_uri.is_none() {
                return invalid("private_key_jwt auth method requires jwks or jwks_uri");
            }
            if metadata.token_endpoint_auth_signing_alg.is_none() {
                return invalid("Missing token_endpoint_auth_signing_alg client metadata");
            }
        }
        other => return invalid(&format!("Unsupported client authentication method \"{other}\"")),
    }
    let native = match metadata.application_type.as_str() {
        "native" => true,
        "web" => false,
        other => return invalid(&format!("Unsupported application_type \"{other}\"")),
    };
    if native && metadata.token_endpoint_auth_method != "none" {
        return invalid("Native clients must authenticate using \"none\" method");
    }
    let client_url = url::Url::parse(client_id).ok();
    if let Some(client_uri) = &metadata.client_uri {
        let uri =
            url::Url::parse(client_uri).map_err(|_| OAuthError::invalid_client_metadata("client_uri must be a URL"))?;
        if let Some(id) = client_url.as_ref() {
            if uri.origin() != id.origin() || !id.path().starts_with(uri.path().trim_end_matches('/')) {
                return invalid("client_uri must have the same origin as the client_id and be a parent of its path");
            }
        }
    }
    for uri in &metadata.redirect_uris {
        check_redirect_uri(uri, native, client_url.as_ref(), dev_mode)?;
    }
    Ok(())
}

fn check_redirect_uri(uri: &str, native: bool, client_id: Option<&url::Url>, dev_mode: bool) -> Result<(), OAuthError> {
    let bad = |why: &str| Err(OAuthError::invalid_redirect_uri(format!("Invalid redirect_uri {uri}: {why}")));
    let parsed = match url::Url::parse(uri) {
        Ok(parsed) => parsed,
        Err(_) => return bad("not a URL"),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("credentials are not allowed");
    }
    match parsed.scheme() {
        "https" => {
            let host = parsed.host_str().unwrap_or_default();
            let tld = host.rsplit('.').next().unwrap_or_default();
            if (host == "localhost" && !dev_mode) || (host != "localhost" && LOCAL_TLDS.contains(&tld)) {
                return bad("the host must not be local");
            }
            Ok(())
        }
        "http" => match parsed.host_str() {
            Some("127.0.0.1") | Some("[::1]") if native => Ok(()),
            Some("localhost") => bad("use 127.0.0.1 or [::1] instead of localhost"),
            _ => bad("http is only allowed for loopback redirects of native clients"),
        },
        scheme if scheme.contains('.') => {
            if !native {
                return bad("private-use schemes are only allowed for native clients");
            }
            if parsed.has_host()
                || !uri[scheme.len() + 1..].starts_with('/')
                || uri[scheme.len() + 1..].starts_with("//")
            {
                return bad("a private-use scheme must be followed by a single slash");
            }
            if let Some(host) = client_id.and_then(|c| c.host_str()) {
                let reversed: Vec<&str> = host.split('.').rev().collect();
                if scheme != reversed.join(".") {
                    return bad("the scheme must be the client_id host name, reversed");
                }
            }
            Ok(())
        }
        _ => bad("unsupported scheme"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_clients_derive_their_metadata_from_the_id() {
        let client = loopback(
            "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric",
        )
        .expect("valid");
        assert_eq!(client.metadata.redirect_uris, vec!["http://127.0.0.1/callback"]);
        assert_eq!(client.metadata.scope.as_deref(), Some("atproto transition:generic"));
        assert!(!client.is_confidential());
        assert_eq!(
            client.redirect_uri(Some("http://127.0.0.1:8080/callback")).as_deref(),
            Ok("http://127.0.0.1:8080/callback")
        );
        assert!(client.redirect_uri(Some("http://127.0.0.1/other")).is_err());
        let plain = loopback("http://localhost").expect("valid");
        assert_eq!(plain.metadata.redirect_uris, vec!["http://127.0.0.1/", "http://[::1]/"]);
        for invalid in [
            "http://localhost:8080",
            "http://localhost/path",
            "http://localhost?redirect_uri=http%3A%2F%2Flocalhost%2F",
            "http://localhost?foo=bar",
            "http://localhost?scope=transition%3Ageneric",
        ] {
            assert!(loopback(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn discoverable_client_ids_are_public_https_urls_with_a_path() {
        assert!(discoverable("https://app.example.social/client-metadata.json", false).is_ok());
        for invalid in [
            "https://app.example.social",
            "https://app.example.social/",
            "http://app.example.social/x",
            "https://app.example.social/x#f",
            "https://1.2.3.4/x",
            "https://app.test/x",
            "https://sub.example.com/x",
            "https://user@app.example.social/x",
            "https://app.example.social/a/../x",
        ] {
            assert!(discoverable(invalid, false).is_err(), "{invalid}");
        }
        assert!(discoverable("http://127.0.0.1:8123/client.json", true).is_ok());
        assert!(discoverable("http://127.0.0.1:8123/client.json", false).is_err());
    }

    #[test]
    fn metadata_rules() {
        let good: ClientMetadata = serde_json::from_value(serde_json::json!({
            "client_id": "https://app.example.social/client.json",
            "client_name": "Example",
            "redirect_uris": ["https://app.example.social/callback"],
            "scope": "atproto transition:generic",
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "dpop_bound_access_tokens": true
        }))
        .expect("metadata");
        assert!(validate("https://app.example.social/client.json", &good, false).is_ok());
        let mut no_dpop = good.clone();
        no_dpop.dpop_bound_access_tokens = None;
        assert!(validate("https://app.example.social/client.json", &no_dpop, false).is_err());
        let mut no_atproto = good.clone();
        no_atproto.scope = Some("transition:generic".into());
        assert!(validate("https://app.example.social/client.json", &no_atproto, false).is_err());
        let mut web_loopback = good.clone();
        web_loopback.redirect_uris = vec!["http://127.0.0.1/cb".into()];
        assert!(validate("https://app.example.social/client.json", &web_loopback, false).is_err());
        let mut native = good;
        native.application_type = "native".into();
        native.redirect_uris = vec!["social.example.app:/callback".into(), "http://127.0.0.1/cb".into()];
        assert!(validate("https://app.example.social/client.json", &native, false).is_ok());
    }
}
