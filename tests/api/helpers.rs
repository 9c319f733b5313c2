//! The `spawn_app()` harness.

use std::collections::BTreeMap;

use aurora_locus::config::Config;
use aurora_locus::context::AppContext;
use aurora_locus::server::Bound;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server on a fresh database and data directory.
pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub ctx: std::sync::Arc<AppContext>,
    pub plc: crate::plc_double::PlcDouble,
    pub smtp: crate::smtp_sink::SmtpSink,
    pub dns: crate::dns_double::DnsDouble,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// Runs a test body once per database backend: `<name>::sqlite` and `<name>::postgres`.
macro_rules! app_test {
    ($name:ident, |$app:ident| $body:block) => {
        app_test!($name, [], |$app| $body);
    };
    ($name:ident, [$($key:literal => $value:literal),* $(,)?], |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let settings: &[(&str, &str)] = &[$(($key, $value)),*];
                let app = crate::helpers::TestApp::spawn_with(crate::helpers::Backend::Sqlite, settings).await;
                run(app.expect("SQLite is always available")).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let settings: &[(&str, &str)] = &[$(($key, $value)),*];
                if let Some(app) = crate::helpers::TestApp::spawn_with(crate::helpers::Backend::Postgres, settings).await {
                    run(app).await;
                }
            }
        }
    };
}

impl TestApp {
    /// Starts a server; `None` (after a printed notice) when the backend is not configured.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server with extra environment settings.
    pub async fn spawn_with(backend: Backend, settings: &[(&str, &str)]) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (format!("sqlite://{}?mode=rwc", dir.path().join("aurora.sqlite").display()), None),
            Backend::Postgres => {
                let Ok(base) = std::env::var("AURORA_TEST_POSTGRES_URL") else {
                    println!("SKIPPED (PostgreSQL): AURORA_TEST_POSTGRES_URL is not set");
                    return None;
                };
                let name = format!("aurora_test_{}", random_suffix());
                create_database(&base, &name).await;
                (database_url_for(&base, &name), Some((base, name)))
            }
        };
        let plc = crate::plc_double::PlcDouble::start().await;
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("PDS_DID_PLC_URL".into(), plc.url.clone());
        let smtp = crate::smtp_sink::SmtpSink::start().await;
        let dns = crate::dns_double::DnsDouble::start().await;
        env.insert("AURORA_DNS_RESOLVER".into(), dns.addr.to_string());
        env.insert("PDS_EMAIL_SMTP_URL".into(), smtp.url.clone());
        env.insert("PDS_EMAIL_FROM_ADDRESS".into(), "Aurora <noreply@pds.test>".into());
        env.insert("PDS_DATA_DIRECTORY".into(), dir.path().display().to_string());
        env.insert("AURORA_DATABASE_URL".into(), database_url);
        env.insert("AURORA_BIND".into(), "127.0.0.1:0".into());
        env.insert("PDS_DEV_MODE".into(), "true".into());
        // Tests make many requests from one address; rate-limit tests turn the limits back on.
        env.insert("PDS_RATE_LIMITS_ENABLED".into(), "false".into());
        for (k, v) in settings {
            env.insert((*k).into(), (*v).into());
        }
        let config = Config::from_source(&env).expect("test config is valid");
        let bind = config.bind;
        let ctx = AppContext::build(config).await.expect("app context");
        let bound = Bound::bind(bind).await.expect("bind port 0");
        let url = format!("http://{}", bound.addr);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = ctx.clone();
        let server = tokio::spawn(async move {
            let _ = bound
                .serve(served, async move {
                    let _ = rx.await;
                })
                .await;
        });
        Some(TestApp {
            url,
            client: reqwest::Client::new(),
            backend,
            ctx,
            plc,
            smtp,
            dns,
            shutdown: Some(tx),
            server: Some(server),
            postgres,
            _dir: dir,
        })
    }

    /// Tells the server to stop, as SIGTERM does the binary: it accepts no new connection and
    /// finishes the requests in flight.
    pub fn stop_serving(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn xrpc(&self, nsid: &str) -> String {
        format!("{}/xrpc/{nsid}", self.url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).send().await.expect("request")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Calls an XRPC method with a bearer token: a GET with `params`, or a POST with `body`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        nsid: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.client.request(method, self.xrpc(nsid));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Creates an account `<name>.test` with password `password`; returns the response body.
    pub async fn create_account(&self, name: &str) -> serde_json::Value {
        let body = serde_json::json!({
            "handle": format!("{name}.test"),
            "email": format!("{name}@example.com"),
            "password": format!("{name}-password"),
        });
        let (status, account) = self.post_json("/xrpc/com.atproto.server.createAccount", &body).await;
        assert_eq!(status, 200, "createAccount: {account}");
        account
    }

    /// An access token for `handle`, from a new ordinary app password named `name` that the
    /// session `token` creates.
    pub async fn app_password_session(&self, token: &str, handle: &str, name: &str) -> String {
        let body = serde_json::json!({ "name": name });
        let (status, created) =
            self.call(reqwest::Method::POST, "com.atproto.server.createAppPassword", Some(token), Some(&body)).await;
        assert_eq!(status, 200, "createAppPassword: {created}");
        let login = serde_json::json!({ "identifier": handle, "password": created["password"] });
        let (status, session) = self.post_json("/xrpc/com.atproto.server.createSession", &login).await;
        assert_eq!(status, 200, "createSession: {session}");
        session["accessJwt"].as_str().expect("an app session").to_owned()
    }

    /// Uploads `bytes` as `content_type` with the session `token`; the answer's `blob` ref.
    pub async fn upload_blob(&self, token: &str, bytes: &[u8], content_type: &str) -> serde_json::Value {
        let response = self
            .client
            .post(self.xrpc("com.atproto.repo.uploadBlob"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 200, "uploadBlob");
        let answer: serde_json::Value = response.json().await.expect("json");
        answer["blob"].clone()
    }

    /// A permanent blob's bytes as the store holds them, read past the server.
    pub async fn stored_blob(&self, did: &str, cid: &str) -> Option<Vec<u8>> {
        use aurora_locus::blobs::BlobStore;
        use futures_util::TryStreamExt;
        let stream =
            self.ctx.blobs.get(&typed_did(did), &cid.parse().expect("cid"), None).await.expect("blob store")?;
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await.expect("read");
        Some(chunks.concat())
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = self.client.post(format!("{}{path}", self.url)).json(body).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop_serving();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some((base, name)) = self.postgres.take() {
            // The database is dropped from a thread of its own: Drop cannot await, and the
            // test's runtime may already be shutting down.
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    runtime.block_on(drop_database(&base, &name));
                }
            })
            .join();
        }
    }
}

pub(crate) fn random_suffix() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(crate) fn database_url_for(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(base).expect("AURORA_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn admin_connection(base: &str) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(base.to_owned());
    options.sqlx_logging(false).max_connections(1);
    sea_orm::Database::connect(options).await.expect("connect to AURORA_TEST_POSTGRES_URL")
}

pub(crate) async fn create_database(base: &str, name: &str) {
    use sea_orm::ConnectionTrait;
    let db = admin_connection(base).await;
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
    let _ = db.close().await;
}

pub(crate) async fn drop_database(base: &str, name: &str) {
    use sea_orm::ConnectionTrait;
    let db = admin_connection(base).await;
    let _ = db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
    let _ = db.close().await;
}

/// A valid 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// A DID from an answer, for calling the server's typed functions directly.
pub fn typed_did(text: &str) -> aurora_atproto::syntax::Did {
    text.parse().expect("a DID")
}
