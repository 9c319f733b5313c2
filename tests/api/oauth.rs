//! OAuth end to end through the real server: PAR with the DPoP nonce dance, the sign-in and
//! consent pages as a browser posts them, the token endpoint, DPoP-bound XRPC calls with their
//! permissions, refresh, revocation, and the refusals along the way.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use aurora_atproto::crypto::{KeyType, Keypair};

use crate::helpers::TestApp;

/// A client's DPoP key.
struct DpopKey {
    key: Keypair,
    jwk: Value,
}

impl DpopKey {
    fn new() -> DpopKey {
        let key = Keypair::generate(KeyType::P256);
        let (x, y) = key.public_key().coordinates();
        let jwk =
            json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y) });
        DpopKey { key, jwk }
    }

    fn proof(&self, method: &str, url: &str, nonce: Option<&str>, access_token: Option<&str>) -> String {
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let mut claims = json!({
            "jti": format!("{:x}", rand::random::<u128>()),
            "htm": method,
            "htu": url,
            "iat": aurora_locus::auth::now_secs(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
        }
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// An app using the server: its client id, redirect URI, DPoP key and the nonce it last got.
pub(crate) struct App<'a> {
    server: &'a TestApp,
    issuer: String,
    pub(crate) client_id: String,
    redirect_uri: String,
    key: DpopKey,
    nonce: Option<String>,
}

const REDIRECT: &str = "http://127.0.0.1/callback";

impl<'a> App<'a> {
    async fn new(server: &'a TestApp, scope: &str) -> App<'a> {
        let (status, metadata) = server.get_json("/.well-known/oauth-authorization-server").await;
        assert_eq!(status, 200);
        let issuer = metadata["issuer"].as_str().expect("issuer").to_owned();
        let client_id = format!(
            "http://localhost?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("redirect_uri", REDIRECT)
                .append_pair("scope", scope)
                .finish()
        );
        App { server, issuer, client_id, redirect_uri: REDIRECT.to_owned(), key: DpopKey::new(), nonce: None }
    }

    /// POSTs a form to an authorization-server endpoint with a DPoP proof, retrying once with
    /// the nonce a `use_dpop_nonce` answer hands out.
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        for _ in 0..2 {
            let url = format!("{}{path}", self.issuer);
            let proof = self.key.proof("POST", &url, self.nonce.as_deref(), None);
            let response = self
                .server
                .client
                .post(format!("{}{path}", self.server.url))
                .header("dpop", proof)
                .form(form)
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            if let Some(nonce) = response.headers().get("dpop-nonce") {
                self.nonce = Some(nonce.to_str().expect("nonce").to_owned());
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status == 400 && body["error"] == "use_dpop_nonce" {
                continue;
            }
            return (status, body);
        }
        panic!("the server kept asking for a nonce");
    }

    /// Pushes an authorization request; the `request_uri` and the PKCE verifier.
    async fn push(&mut self, scope: &str) -> (String, String) {
        let verifier = format!("{:x}{:x}", rand::random::<u128>(), rand::random::<u128>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let client_id = self.client_id.clone();
        let redirect_uri = self.redirect_uri.clone();
        let (status, body) = self
            .post(
                "/oauth/par",
                &[
                    ("client_id", &client_id),
                    ("response_type", "code"),
                    ("redirect_uri", &redirect_uri),
                    ("scope", scope),
                    ("state", "state-1"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
        assert_eq!(status, 201, "PAR: {body}");
        assert_eq!(body["expires_in"], 299);
        (body["request_uri"].as_str().expect("request_uri").to_owned(), verifier)
    }

    async fn exchange(&mut self, code: &str, verifier: &str) -> (u16, Value) {
        let client_id = self.client_id.clone();
        let redirect_uri = self.redirect_uri.clone();
        self.post(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    async fn refresh(&mut self, refresh_token: &str) -> (u16, Value) {
        let client_id = self.client_id.clone();
        self.post(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("client_id", &client_id), ("refresh_token", refresh_token)],
        )
        .await
    }

    /// An XRPC call with the access token and a fresh proof (retrying for a new nonce once).
    pub(crate) async fn xrpc(
        &mut self,
        method: Method,
        nsid: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        for _ in 0..2 {
            let url = format!("{}/xrpc/{nsid}", self.issuer);
            let proof = self.key.proof(method.as_str(), &url, self.nonce.as_deref(), Some(token));
            let mut request = self
                .server
                .client
                .request(method.clone(), self.server.xrpc(nsid))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            if let Some(nonce) = headers.get("dpop-nonce") {
                self.nonce = Some(nonce.to_str().expect("nonce").to_owned());
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status == 401 && body["error"] == "use_dpop_nonce" {
                continue;
            }
            return (status, body, headers);
        }
        panic!("the server kept asking for a nonce");
    }
}

/// A browser: cookies, and the pages' hidden form fields.
pub(crate) struct Browser<'a> {
    server: &'a TestApp,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

pub(crate) fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// HTML text back to plain text: the named entities and numeric references a template writes.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")).map_or_else(
                || entity.strip_prefix('#').and_then(|d| d.parse::<u32>().ok()).and_then(char::from_u32),
                |h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32),
            ),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

impl<'a> Browser<'a> {
    pub(crate) fn new(server: &'a TestApp) -> Browser<'a> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { server, client, cookies: HashMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().expect("cookie");
            if let Some((name, rest)) = text.split_once('=') {
                let value = rest.split(';').next().unwrap_or_default();
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let response = self
            .client
            .get(format!("{}{path}", self.server.url))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.expect("body"), headers)
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let response = self
            .client
            .post(format!("{}{path}", self.server.url))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("request");
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.expect("body"), headers)
    }

    /// Opens the authorization page, signs in and consents; the redirect's query parameters.
    async fn authorize(
        &mut self,
        app: &App<'_>,
        request_uri: &str,
        handle: &str,
        password: &str,
    ) -> HashMap<String, String> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &app.client_id)
            .append_pair("request_uri", request_uri)
            .finish();
        let (status, page, headers) = self.get(&format!("/oauth/authorize?{query}")).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(">Sign in</button>"), "the sign-in page: {page}");
        let csp = headers.get("content-security-policy").expect("a CSP").to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'none'"), "{csp}");
        let csrf = hidden(&page, "csrf").expect("a CSRF field");
        let (status, page, _) = self
            .post(
                "/oauth/authorize/sign-in",
                &[
                    ("request_uri", request_uri),
                    ("client_id", &app.client_id),
                    ("csrf", &csrf),
                    ("identifier", handle),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(">Authorize</button>"), "the consent page: {page}");
        let did = hidden(&page, "did").expect("the account");
        let mut form = vec![
            ("request_uri", request_uri),
            ("client_id", app.client_id.as_str()),
            ("csrf", csrf.as_str()),
            ("did", did.as_str()),
            ("decision", "allow"),
        ];
        // A browser sends the boxes left ticked.
        if page.contains("name=\"grant_email\"") {
            form.push(("grant_email", "1"));
        }
        let (status, _, headers) = self.post("/oauth/authorize/consent", &form).await;
        assert_eq!(status, 303);
        let location = headers.get("location").expect("a redirect").to_str().expect("location");
        assert!(location.starts_with(REDIRECT), "{location}");
        let url = url::Url::parse(location).expect("url");
        url.query_pairs().into_owned().collect()
    }
}

/// Signs `name` in through a new app with `scope`; the app, its tokens and the token answer.
pub(crate) async fn signed_in<'a>(server: &'a TestApp, name: &str, scope: &str) -> (App<'a>, Value) {
    let mut app = App::new(server, scope).await;
    let (request_uri, verifier) = app.push(scope).await;
    let mut browser = Browser::new(server);
    let redirect = browser.authorize(&app, &request_uri, &format!("{name}.test"), &format!("{name}-password")).await;
    assert_eq!(redirect.get("state").map(String::as_str), Some("state-1"));
    assert_eq!(redirect.get("iss"), Some(&app.issuer));
    let code = redirect.get("code").expect("a code").clone();
    let (status, tokens) = app.exchange(&code, &verifier).await;
    assert_eq!(status, 200, "token: {tokens}");
    (app, tokens)
}

app_test!(an_app_signs_in_and_uses_the_account_through_dpop_tokens, |server| {
    let account = server.create_account("olive").await;
    let scope = "atproto transition:generic";
    let (mut app, tokens) = signed_in(&server, "olive", scope).await;
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(tokens["sub"], account["did"]);
    assert_eq!(tokens["scope"], scope);
    let access = tokens["access_token"].as_str().expect("access token").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_owned();

    let (status, session, headers) = app.xrpc(Method::GET, "com.atproto.server.getSession", &access, None).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["did"], account["did"]);
    assert!(session.get("email").is_none(), "no email without account:email: {session}");
    assert!(headers.contains_key("dpop-nonce"));

    let post = json!({ "repo": account["did"], "collection": "app.bsky.feed.post",
        "record": { "$type": "app.bsky.feed.post", "text": "via OAuth", "createdAt": "2024-01-01T00:00:00Z" } });
    let (status, created, _) = app.xrpc(Method::POST, "com.atproto.repo.createRecord", &access, Some(&post)).await;
    assert_eq!(status, 200, "{created}");

    // transition:generic is not account management.
    let (status, refused, _) =
        app.xrpc(Method::POST, "com.atproto.server.createAppPassword", &access, Some(&json!({ "name": "x" }))).await;
    assert_eq!((status, refused["error"].as_str()), (403, Some("Forbidden")), "{refused}");
    let (status, refused, _) = app
        .xrpc(Method::POST, "com.atproto.identity.updateHandle", &access, Some(&json!({ "handle": "olive2.test" })))
        .await;
    assert_eq!((status, refused["error"].as_str()), (403, Some("ScopeMissingError")), "{refused}");
    assert_eq!(refused["message"], "Missing required scope \"identity:handle\"");

    // The token is DPoP-bound: as a bearer token it is not a session.
    let (status, body) = server.call(Method::GET, "com.atproto.server.getSession", Some(&access), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("InvalidToken")), "{body}");

    // Refreshing rotates both tokens; the old access token stops at once.
    let (status, refreshed) = app.refresh(&refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    let new_access = refreshed["access_token"].as_str().expect("access").to_owned();
    let new_refresh = refreshed["refresh_token"].as_str().expect("refresh").to_owned();
    assert_ne!(new_refresh, refresh);
    let (status, old, headers) = app.xrpc(Method::GET, "com.atproto.server.getSession", &access, None).await;
    assert_eq!((status, old["error"].as_str()), (401, Some("invalid_token")), "{old}");
    let challenge = headers.get("www-authenticate").expect("a challenge").to_str().expect("text");
    assert!(challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    let (status, _, _) = app.xrpc(Method::GET, "com.atproto.server.getSession", &new_access, None).await;
    assert_eq!(status, 200);

    // An old refresh token presented again ends the session.
    let (status, replayed) = app.refresh(&refresh).await;
    assert_eq!((status, replayed["error"].as_str()), (400, Some("invalid_grant")), "{replayed}");
    assert_eq!(replayed["error_description"], "Refresh token replayed");
    let (status, _, _) = app.xrpc(Method::GET, "com.atproto.server.getSession", &new_access, None).await;
    assert_eq!(status, 401, "the session ended");
    let (status, _) = app.refresh(&new_refresh).await;
    assert_eq!(status, 400);
});

app_test!(dpop_proofs_are_checked_on_every_call, |server| {
    server.create_account("piper").await;
    let (app, tokens) = signed_in(&server, "piper", "atproto").await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let url = format!("{}/xrpc/com.atproto.server.getSession", app.issuer);
    let send = |proof: Option<String>| {
        let mut request = server
            .client
            .get(server.xrpc("com.atproto.server.getSession"))
            .header("authorization", format!("DPoP {access}"));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    let answer = send(None).await.expect("request");
    assert_eq!(answer.status().as_u16(), 401);
    assert_eq!(answer.json::<Value>().await.expect("json")["error"], "invalid_dpop_proof");
    // A proof used twice is refused the second time.
    let proof = app.key.proof("GET", &url, app.nonce.as_deref(), Some(&access));
    assert_eq!(send(Some(proof.clone())).await.expect("request").status().as_u16(), 200);
    let replay = send(Some(proof)).await.expect("request");
    assert_eq!(replay.status().as_u16(), 401);
    assert_eq!(replay.json::<Value>().await.expect("json")["message"], "DPoP proof replayed");
    // A proof by another key, or for another URL, or without the token's hash.
    let stranger = DpopKey::new().proof("GET", &url, app.nonce.as_deref(), Some(&access));
    let answer = send(Some(stranger)).await.expect("request");
    assert_eq!(answer.json::<Value>().await.expect("json")["message"], "Invalid DPoP key binding");
    let elsewhere = app.key.proof(
        "GET",
        &format!("{}/xrpc/com.atproto.repo.getRecord", app.issuer),
        app.nonce.as_deref(),
        Some(&access),
    );
    let answer = send(Some(elsewhere)).await.expect("request");
    assert_eq!(answer.json::<Value>().await.expect("json")["message"], "DPoP \"htu\" mismatch");
    let no_ath = app.key.proof("GET", &url, app.nonce.as_deref(), None);
    let answer = send(Some(no_ath)).await.expect("request");
    assert_eq!(answer.json::<Value>().await.expect("json")["message"], "DPoP \"ath\" mismatch");
    let stale = app.key.proof("GET", &url, Some("not-a-nonce"), Some(&access));
    let answer = send(Some(stale)).await.expect("request");
    assert_eq!(answer.status().as_u16(), 401);
    assert!(answer.headers().contains_key("dpop-nonce"), "a fresh nonce to retry with");
    assert_eq!(answer.json::<Value>().await.expect("json")["error"], "use_dpop_nonce");
});

app_test!(granular_scopes_allow_what_they_name_and_nothing_else, |server| {
    let account = server.create_account("quinn").await;
    let scope = "atproto repo:app.bsky.feed.post?action=create blob:image/* account:email";
    let (mut app, tokens) = signed_in(&server, "quinn", scope).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let record = |collection: &str| {
        json!({ "repo": account["did"], "collection": collection,
            "record": { "$type": collection, "text": "x", "createdAt": "2024-01-01T00:00:00Z",
                "subject": { "uri": "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3kaaaaaaaaa22", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" } } })
    };
    let (status, body, _) =
        app.xrpc(Method::POST, "com.atproto.repo.createRecord", &access, Some(&record("app.bsky.feed.post"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) =
        app.xrpc(Method::POST, "com.atproto.repo.createRecord", &access, Some(&record("app.bsky.feed.like"))).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("ScopeMissingError")), "{body}");
    assert_eq!(body["message"], "Missing required scope \"repo:app.bsky.feed.like?action=create\"");
    let put = json!({ "repo": account["did"], "collection": "app.bsky.feed.post", "rkey": "3kaaaaaaaaa22",
        "record": { "$type": "app.bsky.feed.post", "text": "x", "createdAt": "2024-01-01T00:00:00Z" } });
    let (status, body, _) = app.xrpc(Method::POST, "com.atproto.repo.putRecord", &access, Some(&put)).await;
    assert_eq!(body["message"], "Missing required scope \"repo:app.bsky.feed.post?action=update\"", "{status} {body}");
    let (_, session, _) = app.xrpc(Method::GET, "com.atproto.server.getSession", &access, None).await;
    assert_eq!(session["email"], "quinn@example.com", "account:email reads the address");
    let (status, body, _) = app.xrpc(Method::POST, "com.atproto.server.getServiceAuth", &access, None).await;
    assert!(status == 400 || status == 405, "a query: {body}");
    let (status, body) = {
        let (s, b, _) = app
            .xrpc(
                Method::GET,
                "com.atproto.server.getServiceAuth?aud=did:web:api.example.com%23svc&lxm=app.bsky.feed.getTimeline",
                &access,
                None,
            )
            .await;
        (s, b)
    };
    assert_eq!((status, body["error"].as_str()), (403, Some("ScopeMissingError")), "{body}");
});

app_test!(the_authorization_server_refuses_what_the_profile_forbids, |server| {
    server.create_account("rory").await;
    let mut app = App::new(&server, "atproto").await;
    let client_id = app.client_id.clone();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(b"a-verifier-that-is-long-enough-to-be-valid-here"));
    let base = [
        ("client_id", client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "atproto"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let with = |key: &'static str, value: &'static str| {
        let mut form: Vec<(&str, &str)> = base.iter().filter(|(k, _)| *k != key).copied().collect();
        if !value.is_empty() {
            form.push((key, value));
        }
        form
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (with("redirect_uri", "http://127.0.0.1/elsewhere"), "invalid_request"),
        (with("code_challenge", ""), "invalid_request"),
        (with("code_challenge_method", "plain"), "invalid_request"),
        (with("scope", "transition:generic"), "invalid_scope"),
        (with("response_type", "token"), "unsupported_response_type"),
        (with("client_id", "https://app.test/client.json"), "invalid_client_id"),
        (with("client_id", "http://localhost:1234"), "invalid_client_metadata"),
    ];
    for (form, error) in cases {
        let (status, body) = app.post("/oauth/par", &form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(error)), "{form:?}: {body}");
    }
    // Metadata an OAuth client reads.
    let (_, metadata) = server.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(metadata["require_pushed_authorization_requests"], true);
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert_eq!(metadata["dpop_signing_alg_values_supported"], json!(["ES256", "ES256K"]));
    let (_, resource) = server.get_json("/.well-known/oauth-protected-resource").await;
    assert_eq!(resource["authorization_servers"], json!([metadata["issuer"]]));
    // The token endpoint takes nothing without a proof.
    let answer = server
        .client
        .post(format!("{}/oauth/token", server.url))
        .form(&[("grant_type", "authorization_code"), ("client_id", client_id.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status().as_u16(), 401);
    assert!(answer.headers().contains_key("dpop-nonce"));
    assert_eq!(answer.json::<Value>().await.expect("json")["error"], "invalid_dpop_proof");
});

app_test!(a_code_works_once_and_a_refusal_goes_back_to_the_app, |server| {
    server.create_account("sage").await;
    let mut app = App::new(&server, "atproto").await;
    let (request_uri, verifier) = app.push("atproto").await;
    let mut browser = Browser::new(&server);
    let redirect = browser.authorize(&app, &request_uri, "sage.test", "sage-password").await;
    let code = redirect.get("code").expect("code").clone();
    let (status, tokens) = app.exchange(&code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let (status, again) = app.exchange(&code, &verifier).await;
    assert_eq!((status, again["error_description"].as_str()), (400, Some("Invalid code")));
    let (status, _, _) = app.xrpc(Method::GET, "com.atproto.server.getSession", &access, None).await;
    assert_eq!(status, 401, "replaying a code revokes what it obtained");

    // Denying consent, or a wrong password, never yields a code.
    let (request_uri, _) = app.push("atproto").await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &app.client_id)
        .append_pair("request_uri", &request_uri)
        .finish();
    let (_, page, _) = browser.get(&format!("/oauth/authorize?{query}")).await;
    let csrf = hidden(&page, "csrf").expect("csrf");
    let (status, page, _) = browser
        .post(
            "/oauth/authorize/sign-in",
            &[
                ("request_uri", &request_uri),
                ("client_id", &app.client_id),
                ("csrf", &csrf),
                ("identifier", "sage.test"),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("Invalid identifier or password"));
    let (status, _, _) = browser
        .post(
            "/oauth/authorize/consent",
            &[("request_uri", &request_uri), ("client_id", &app.client_id), ("csrf", "forged"), ("decision", "allow")],
        )
        .await;
    assert_eq!(status, 403, "a form without the browser's CSRF token is refused");
    let (status, _, headers) = browser
        .post(
            "/oauth/authorize/consent",
            &[("request_uri", &request_uri), ("client_id", &app.client_id), ("csrf", &csrf), ("decision", "deny")],
        )
        .await;
    assert_eq!(status, 303);
    let location = headers.get("location").expect("location").to_str().expect("text");
    assert!(location.contains("error=access_denied"), "{location}");
    // An unknown request is our own error page, never a redirect.
    let (status, page, _) = browser.get("/oauth/authorize?client_id=x&request_uri=urn:ietf:params:oauth:request_uri:req-00000000000000000000000000000000").await;
    assert_eq!(status, 400, "{page}");
});

app_test!(permission_sets_resolve_from_published_lexicons_and_expand_into_the_grant, |server| {
    let account = server.create_account("lexa").await;
    let did = account["did"].as_str().expect("did").to_owned();
    let token = account["accessJwt"].as_str().expect("token").to_owned();
    // The authority of com.example.auth.* publishes its schemas in lexa's repository.
    let schema = json!({
        "$type": "com.atproto.lexicon.schema",
        "lexicon": 1,
        "id": "com.example.auth.basic",
        "defs": { "main": {
            "type": "permission-set",
            "title": "Example notes",
            "detail": "Write notes in Example",
            "permissions": [
                { "type": "permission", "resource": "repo", "collection": ["com.example.auth.note"] },
                { "type": "permission", "resource": "repo", "collection": ["app.bsky.feed.post"] }
            ]
        } }
    });
    let put = json!({ "repo": did, "collection": "com.atproto.lexicon.schema", "rkey": "com.example.auth.basic", "record": schema });
    let (status, body) = server.call(Method::POST, "com.atproto.repo.putRecord", Some(&token), Some(&put)).await;
    assert_eq!(status, 200, "{body}");
    server.dns.set_txt("_lexicon.auth.example.com", &format!("did={did}"));

    let (status, resolved) =
        server.get_json("/xrpc/com.atproto.lexicon.resolveLexicon?nsid=com.example.auth.basic").await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["uri"], format!("at://{did}/com.atproto.lexicon.schema/com.example.auth.basic"));
    assert_eq!(resolved["schema"]["defs"]["main"]["title"], "Example notes");
    assert_eq!(resolved["cid"], body["cid"]);
    let (status, missing) =
        server.get_json("/xrpc/com.atproto.lexicon.resolveLexicon?nsid=com.example.other.thing").await;
    assert_eq!((status, missing["error"].as_str()), (400, Some("LexiconNotFound")), "{missing}");

    // An app asking for the set gets what it lists inside its own namespace, nothing outside.
    let scope = "atproto include:com.example.auth.basic";
    let (mut app, tokens) = signed_in(&server, "lexa", scope).await;
    assert_eq!(tokens["scope"], "repo:com.example.auth.note atproto", "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let note = json!({ "repo": did, "collection": "com.example.auth.note", "record": { "$type": "com.example.auth.note", "text": "x" } });
    let (status, body, _) = app.xrpc(Method::POST, "com.atproto.repo.createRecord", &access, Some(&note)).await;
    assert_eq!(status, 200, "{body}");
    let post = json!({ "repo": did, "collection": "app.bsky.feed.post",
        "record": { "$type": "app.bsky.feed.post", "text": "x", "createdAt": "2024-01-01T00:00:00Z" } });
    let (status, body, _) = app.xrpc(Method::POST, "com.atproto.repo.createRecord", &access, Some(&post)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("ScopeMissingError")), "{body}");

    // A set that does not resolve is refused when the request is pushed.
    let mut other = App::new(&server, "atproto include:com.example.missing.set").await;
    let client_id = other.client_id.clone();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(b"a-verifier-that-is-long-enough-to-be-valid-here"));
    let (status, body) = other
        .post(
            "/oauth/par",
            &[
                ("client_id", client_id.as_str()),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "atproto include:com.example.missing.set"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
});

app_test!(revocation_ends_a_session_and_response_modes_deliver_the_code, |server| {
    server.create_account("wren").await;
    let (mut app, tokens) = signed_in(&server, "wren", "atproto").await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let client_id = app.client_id.clone();
    // Unknown tokens are accepted silently; the app's own refresh token ends its session.
    let (status, body) = app.post("/oauth/revoke", &[("client_id", &client_id), ("token", "ref-unknown")]).await;
    assert_eq!((status, body), (200, json!({})));
    let (status, _) = app.post("/oauth/revoke", &[("client_id", &client_id), ("token", &refresh)]).await;
    assert_eq!(status, 200);
    let (status, _, _) = app.xrpc(Method::GET, "com.atproto.server.getSession", &access, None).await;
    assert_eq!(status, 401, "revoked");
    let (status, body) = app.post("/oauth/revoke", &[("client_id", &client_id)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "a token is required");

    // fragment and form_post carry the same parameters in their own way.
    for mode in ["fragment", "form_post"] {
        let verifier = "a-verifier-that-is-long-enough-to-be-valid-here-too";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let (status, pushed) = app
            .post(
                "/oauth/par",
                &[
                    ("client_id", &client_id),
                    ("response_type", "code"),
                    ("redirect_uri", REDIRECT),
                    ("scope", "atproto"),
                    ("state", "s2"),
                    ("response_mode", mode),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
        assert_eq!(status, 201, "{pushed}");
        let request_uri = pushed["request_uri"].as_str().expect("request_uri").to_owned();
        let mut browser = Browser::new(&server);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client_id)
            .append_pair("request_uri", &request_uri)
            .finish();
        let (_, page, _) = browser.get(&format!("/oauth/authorize?{query}")).await;
        let csrf = hidden(&page, "csrf").expect("csrf");
        let (_, page, _) = browser
            .post(
                "/oauth/authorize/sign-in",
                &[
                    ("request_uri", &request_uri),
                    ("client_id", &client_id),
                    ("csrf", &csrf),
                    ("identifier", "wren.test"),
                    ("password", "wren-password"),
                ],
            )
            .await;
        let did = hidden(&page, "did").expect("did");
        let (status, page, headers) = browser
            .post(
                "/oauth/authorize/consent",
                &[
                    ("request_uri", &request_uri),
                    ("client_id", &client_id),
                    ("csrf", &csrf),
                    ("did", &did),
                    ("decision", "allow"),
                ],
            )
            .await;
        if mode == "fragment" {
            assert_eq!(status, 303);
            let location = headers.get("location").expect("location").to_str().expect("text");
            let fragment = location.split_once('#').expect("a fragment").1;
            let params: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(fragment.as_bytes()).into_owned().collect();
            assert_eq!(params.get("state").map(String::as_str), Some("s2"));
            assert!(params.get("code").is_some_and(|c| c.starts_with("cod-")), "{location}");
        } else {
            assert_eq!(status, 200);
            assert!(page.contains(&format!("action=\"{REDIRECT}\"")) && page.contains("name=\"code\""), "{page}");
            let csp = headers.get("content-security-policy").expect("csp").to_str().expect("text");
            assert!(csp.contains("form-action 'self' http://127.0.0.1") && csp.contains("script-src 'nonce-"), "{csp}");
        }
    }
});

#[tokio::test]
async fn a_dpop_proof_taken_at_one_replica_is_refused_at_another_through_redis() {
    use aurora_locus::oauth::replay::RecentIds;
    let Ok(redis) = std::env::var("AURORA_TEST_REDIS_URL") else {
        println!("SKIPPED (Redis): AURORA_TEST_REDIS_URL is not set");
        return;
    };
    let (one, two) = (RecentIds::shared(&redis).expect("one"), RecentIds::shared(&redis).expect("two"));
    let now = aurora_locus::auth::now_secs();
    let proof = format!("thumbprint:{:x}", rand::random::<u128>());
    assert!(one.first_use(&proof, now + 300, now).await, "first use, at replica one");
    assert!(!two.first_use(&proof, now + 300, now).await, "replayed to replica two");
    assert!(!one.first_use(&proof, now + 300, now).await, "replayed to replica one");
    let other = format!("thumbprint:{:x}", rand::random::<u128>());
    assert!(two.first_use(&other, now + 300, now).await, "another proof is fine");
    // Redis down: each replica still refuses what it saw itself.
    let alone = RecentIds::shared("127.0.0.1:1").expect("unreachable");
    let third = format!("thumbprint:{:x}", rand::random::<u128>());
    assert!(alone.first_use(&third, now + 300, now).await);
    assert!(!alone.first_use(&third, now + 300, now).await);
}
