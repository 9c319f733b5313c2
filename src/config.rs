//! Configuration from the environment. Aurora reads the reference PDS's variables, so an
//! operator can point it at an existing `pds.env`, plus a few `AURORA_*` settings of its own.
//! Every value is checked at start-up; a bad one stops the server with the variable's name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand::RngCore;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {message}")]
    Invalid { var: &'static str, message: String },
    #[error("could not read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn invalid(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { var, message: message.into() }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Secrets are kept out of `Debug` output so that a logged config never leaks them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The shortest PDS_JWT_SECRET accepted (`openssl rand --hex 16` gives 32).
pub const MIN_SECRET_LENGTH: usize = 16;

#[derive(Clone, Debug)]
pub struct Config {
    /// Public host name, e.g. `pds.example.com` (PDS_HOSTNAME).
    pub hostname: String,
    /// Public base URL: `https://<hostname>`, or `http://localhost:<port>` for a localhost host.
    pub public_url: String,
    /// Address to listen on (AURORA_BIND, else 127.0.0.1 with PDS_PORT).
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub blobstore_dir: PathBuf,
    /// Blobs in an S3-compatible store instead of `blobstore_dir` (PDS_BLOBSTORE_S3_BUCKET set).
    pub blobstore_s3: Option<crate::blobs::S3Config>,
    pub blob_upload_limit: u64,
    /// Bytes of uploads not yet used in a record one account may hold (AURORA_TEMP_BLOB_QUOTA).
    pub temp_blob_quota: u64,
    /// Free disk bytes below which uploads and imports are refused (AURORA_MIN_FREE_DISK).
    pub min_free_disk: u64,
    pub json_body_limit: usize,
    /// Responses of a known size below this many bytes are never compressed
    /// (AURORA_COMPRESSION_MIN_BYTES).
    pub compression_min_bytes: u64,
    /// Whether repository CARs are compressed for clients that accept it (AURORA_COMPRESS_CARS;
    /// off by default: they shrink little for the CPU it costs).
    pub compress_cars: bool,
    /// Bytes of records' JSON kept for reads to serve again (AURORA_RECORD_CACHE_BYTES; 0 keeps
    /// none).
    pub record_cache_bytes: u64,
    pub service_did: String,
    pub service_handle_domains: Vec<String>,
    pub did_plc_url: String,
    pub jwt_secret: Secret,
    /// What DPoP nonces are derived from (PDS_DPOP_SECRET); the JWT secret when unset.
    pub dpop_secret: Option<Secret>,
    /// Extra certificate authorities outbound fetches trust (AURORA_EXTRA_CA_CERTS, a PEM file).
    pub extra_ca_certs: Option<std::path::PathBuf>,
    pub admin_password: Secret,
    /// The moderators' password (AURORA_MODERATOR_PASSWORD, HTTP Basic user `moderator`); no
    /// moderator credential without it.
    pub moderator_password: Option<Secret>,
    /// A listen address of its own for `/metrics` (AURORA_METRICS_BIND); without it `/metrics`
    /// answers on the main address to trusted proxies' and loopback addresses only.
    pub metrics_bind: Option<SocketAddr>,
    pub plc_rotation_key_hex: Secret,
    pub invite_required: bool,
    pub dev_mode: bool,
    pub crawlers: Vec<String>,
    pub bsky_app_view: Option<(String, String)>,
    pub report_service: Option<(String, String)>,
    /// Chat service for `chat.bsky.*` without a proxy header (AURORA_CHAT_URL /
    /// AURORA_CHAT_DID); the AppView otherwise, as the reference routes them.
    pub chat_service: Option<(String, String)>,
    /// Moderation service for `tools.ozone.*` (PDS_MOD_SERVICE_URL / PDS_MOD_SERVICE_DID).
    pub mod_service: Option<(String, String)>,
    /// Largest proxied response body (PDS_PROXY_MAX_RESPONSE_SIZE, bytes).
    pub proxy_max_response_bytes: u64,
    pub email_smtp_url: Option<Secret>,
    pub email_from_address: Option<String>,
    pub repo_backfill_limit_ms: u64,
    /// Live firehose events a consumer may fall behind by before it is cut off with
    /// ConsumerTooSlow (AURORA_FIREHOSE_BUFFER; the reference allows 500).
    pub firehose_buffer: usize,
    /// Firehose subscribers at once (AURORA_FIREHOSE_MAX_SUBSCRIBERS).
    pub firehose_max_subscribers: usize,
    /// Firehose subscribers one address may hold (AURORA_FIREHOSE_MAX_PER_IP).
    pub firehose_max_per_ip: usize,
    /// How long a deleted account stays restorable before its data is purged
    /// (AURORA_ACCOUNT_DELETION_GRACE_SECS; 0, the default, purges at once).
    pub account_deletion_grace_secs: u64,
    pub accepting_repo_imports: bool,
    /// The largest repository CAR `importRepo` takes, in bytes.
    pub max_repo_import_size: u64,
    pub privacy_policy_url: Option<String>,
    pub terms_of_service_url: Option<String>,
    pub contact_email_address: Option<String>,
    pub log_format: LogFormat,
    /// A DNS server to resolve handles with instead of the system's (AURORA_DNS_RESOLVER).
    pub dns_resolver: Option<SocketAddr>,
    /// Names of the secrets that were generated for development rather than configured.
    pub dev_secrets: Vec<&'static str>,
    pub rate_limits: crate::rate_limit::RateLimitConfig,
    /// Proxies whose `X-Forwarded-For` names the client (AURORA_TRUSTED_PROXIES).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Threads that hash passwords (AURORA_PASSWORD_HASH_THREADS; one per core by default).
    pub password_hash_threads: usize,
    /// Hashes that may wait for a thread before sign-ins are refused with 503
    /// (AURORA_PASSWORD_HASH_QUEUE).
    pub password_hash_queue: usize,
    /// Connections one address may hold (AURORA_MAX_CONNECTIONS_PER_IP); trusted proxies are
    /// not capped.
    pub max_connections_per_ip: usize,
    /// From a request's first byte to the end of its head (AURORA_HEADER_TIMEOUT_SECS).
    pub header_timeout: std::time::Duration,
    /// Between requests on a kept-alive connection (AURORA_IDLE_TIMEOUT_SECS).
    pub idle_timeout: std::time::Duration,
    /// How long a write may wait for a client that is not reading (AURORA_WRITE_TIMEOUT_SECS).
    pub write_timeout: std::time::Duration,
}

/// Where variables come from: the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Source for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned().filter(|v| !v.trim().is_empty())
    }
}

/// Loads `KEY=VALUE` lines (a reference `pds.env`) into the process environment; variables
/// already set win. Used before [`Config::from_source`] when `AURORA_ENV_FILE` is given.
pub fn load_env_file(path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(invalid("AURORA_ENV_FILE", format!("{}:{}: expected KEY=VALUE", path.display(), number + 1)));
        };
        let value = value.trim().trim_matches('"').trim_matches('\'');
        if std::env::var_os(key.trim()).is_none() {
            // Runs before the runtime starts, while the process has a single thread.
            std::env::set_var(key.trim(), value);
        }
    }
    Ok(())
}

fn parse_bool(source: &impl Source, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match source.get(var).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(invalid(var, format!("expected true or false, found {other:?}"))),
    }
}

fn parse_num<T: std::str::FromStr>(source: &impl Source, var: &'static str, default: T) -> Result<T, ConfigError> {
    match source.get(var) {
        None => Ok(default),
        Some(raw) => {
            raw.trim().parse().map_err(|_| invalid(var, format!("expected a non-negative integer, found {raw:?}")))
        }
    }
}

/// A positive number of seconds.
fn secs(source: &impl Source, var: &'static str, default: u64) -> Result<std::time::Duration, ConfigError> {
    let value: u64 = parse_num(source, var, default)?;
    Ok(std::time::Duration::from_secs(value.max(1)))
}

fn parse_url(source: &impl Source, var: &'static str) -> Result<Option<String>, ConfigError> {
    match source.get(var) {
        None => Ok(None),
        Some(raw) => {
            let url = url::Url::parse(raw.trim()).map_err(|e| invalid(var, format!("not a URL ({e}): {raw:?}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(var, format!("expected an http(s) URL, found {raw:?}")));
            }
            Ok(Some(raw.trim().trim_end_matches('/').to_owned()))
        }
    }
}

fn parse_did(source: &impl Source, var: &'static str) -> Result<Option<String>, ConfigError> {
    match source.get(var) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<aurora_atproto::syntax::Did>()
            .map(|did| Some(did.as_str().to_owned()))
            .map_err(|e| invalid(var, format!("not a DID ({e}): {raw:?}"))),
    }
}

/// The reference's `PDS_BLOBSTORE_S3_*` variables, when a bucket is named.
fn s3_config(source: &impl Source) -> Result<Option<crate::blobs::S3Config>, ConfigError> {
    let Some(bucket) = source.get("PDS_BLOBSTORE_S3_BUCKET").map(|b| b.trim().to_owned()) else { return Ok(None) };
    if bucket.is_empty() {
        return Err(invalid("PDS_BLOBSTORE_S3_BUCKET", "is empty"));
    }
    let access_key_id = source.get("PDS_BLOBSTORE_S3_ACCESS_KEY_ID");
    let secret_access_key = source.get("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY").map(Secret);
    if access_key_id.is_some() != secret_access_key.is_some() {
        return Err(invalid(
            "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
            "must be set together with PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
        ));
    }
    let timeout_ms: u64 = parse_num(source, "PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS", 0)?;
    Ok(Some(crate::blobs::S3Config {
        bucket,
        region: source.get("PDS_BLOBSTORE_S3_REGION"),
        endpoint: parse_url(source, "PDS_BLOBSTORE_S3_ENDPOINT")?,
        force_path_style: parse_bool(source, "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", false)?,
        access_key_id,
        secret_access_key,
        prefix: source.get("AURORA_BLOBSTORE_S3_PREFIX"),
        request_timeout: (timeout_ms > 0).then(|| std::time::Duration::from_millis(timeout_ms)),
        uploads: parse_num(source, "AURORA_BLOBSTORE_S3_UPLOADS", 8usize)?.max(1),
    }))
}

fn pair(
    source: &impl Source,
    url_var: &'static str,
    did_var: &'static str,
) -> Result<Option<(String, String)>, ConfigError> {
    match (parse_url(source, url_var)?, parse_did(source, did_var)?) {
        (Some(url), Some(did)) => Ok(Some((url, did))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(did_var, format!("must be set together with {url_var}"))),
        (None, Some(_)) => Err(invalid(url_var, format!("must be set together with {did_var}"))),
    }
}

impl Config {
    /// Reads the configuration. Secrets that are not configured are generated once and kept in
    /// `<data dir>/dev-secrets.env` (mode 0600), so a bare `cargo run` works and restarts keep
    /// sessions valid; [`Config::dev_secrets`] names them so start-up can warn loudly.
    pub fn from_source(source: &impl Source) -> Result<Config, ConfigError> {
        let hostname = source.get("PDS_HOSTNAME").unwrap_or_else(|| "localhost".to_owned()).trim().to_lowercase();
        if hostname.is_empty() || hostname.contains(['/', ':', ' ']) {
            return Err(invalid("PDS_HOSTNAME", format!("expected a bare host name, found {hostname:?}")));
        }
        let port: u16 = parse_num(source, "PDS_PORT", 2583)?;
        let bind = match source.get("AURORA_BIND") {
            Some(raw) => {
                raw.trim().parse().map_err(|_| invalid("AURORA_BIND", format!("expected host:port, found {raw:?}")))?
            }
            None => SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let is_local = hostname == "localhost";
        let public_url = if is_local { format!("http://localhost:{port}") } else { format!("https://{hostname}") };
        let data_dir = PathBuf::from(source.get("PDS_DATA_DIRECTORY").unwrap_or_else(|| "./data".to_owned()));
        let database_url = match source.get("AURORA_DATABASE_URL") {
            Some(url)
                if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                url
            }
            Some(url) => {
                return Err(invalid("AURORA_DATABASE_URL", format!("expected sqlite:… or postgres://…, found {url:?}")))
            }
            None => format!("sqlite://{}?mode=rwc", data_dir.join("aurora.sqlite").display()),
        };
        let blobstore_dir =
            source.get("PDS_BLOBSTORE_DISK_LOCATION").map(PathBuf::from).unwrap_or_else(|| data_dir.join("blobs"));
        let blobstore_s3 = s3_config(source)?;
        let service_did = parse_did(source, "PDS_SERVICE_DID")?.unwrap_or_else(|| format!("did:web:{hostname}"));
        let service_handle_domains = match source.get("PDS_SERVICE_HANDLE_DOMAINS") {
            Some(raw) => raw
                .split(',')
                .map(|d| d.trim().to_lowercase())
                .filter(|d| !d.is_empty())
                .map(|d| if d.starts_with('.') { d } else { format!(".{d}") })
                .collect(),
            None if is_local => vec![".test".to_owned()],
            None => vec![format!(".{hostname}")],
        };
        let crawlers = match source.get("PDS_CRAWLERS") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| {
                    url::Url::parse(c)
                        .map(|_| c.trim_end_matches('/').to_owned())
                        .map_err(|e| invalid("PDS_CRAWLERS", format!("{c:?} is not a URL: {e}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let log_format = match source.get("AURORA_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid("AURORA_LOG_FORMAT", format!("expected pretty or json, found {other:?}")))
            }
        };
        let report_service = match pair(source, "PDS_REPORT_SERVICE_URL", "PDS_REPORT_SERVICE_DID")? {
            Some(pair) => Some(pair),
            None => pair(source, "PDS_MOD_SERVICE_URL", "PDS_MOD_SERVICE_DID")?,
        };
        let email_smtp_url = source.get("PDS_EMAIL_SMTP_URL").map(Secret::new);
        let email_from_address = source.get("PDS_EMAIL_FROM_ADDRESS");
        if email_smtp_url.is_some() && email_from_address.is_none() {
            return Err(invalid("PDS_EMAIL_FROM_ADDRESS", "must be set when PDS_EMAIL_SMTP_URL is"));
        }

        let mut dev_secrets = Vec::new();
        let mut stored = DevSecrets::load(&data_dir)?;
        let mut secret = |var: &'static str, make: fn() -> String| -> Result<Secret, ConfigError> {
            if let Some(value) = source.get(var) {
                return Ok(Secret::new(value.trim()));
            }
            dev_secrets.push(var);
            stored.get_or_make(var, make)
        };
        let jwt_secret = secret("PDS_JWT_SECRET", random_hex)?;
        // Session tokens are HMACs under this secret: a short one can be guessed offline.
        if jwt_secret.expose().len() < MIN_SECRET_LENGTH {
            return Err(invalid("PDS_JWT_SECRET", format!("must be at least {MIN_SECRET_LENGTH} characters")));
        }
        let admin_password = secret("PDS_ADMIN_PASSWORD", random_hex)?;
        let plc_rotation_key_hex = secret("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", random_hex)?;
        let rotation_key = plc_rotation_key_hex.expose();
        if rotation_key.len() != 64 || !rotation_key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
                "expected 64 hex digits (a secp256k1 private key)",
            ));
        }
        stored.save()?;

        Ok(Config {
            hostname,
            public_url,
            bind,
            database_url,
            blobstore_dir,
            blobstore_s3,
            blob_upload_limit: parse_num(source, "PDS_BLOB_UPLOAD_LIMIT", 5 * 1024 * 1024)?,
            temp_blob_quota: parse_num(source, "AURORA_TEMP_BLOB_QUOTA", 256 * 1024 * 1024u64)?,
            min_free_disk: parse_num(source, "AURORA_MIN_FREE_DISK", 512 * 1024 * 1024u64)?,
            json_body_limit: parse_num(source, "AURORA_JSON_BODY_LIMIT", 150 * 1024)?,
            compression_min_bytes: parse_num(source, "AURORA_COMPRESSION_MIN_BYTES", 1024u64)?,
            compress_cars: parse_bool(source, "AURORA_COMPRESS_CARS", false)?,
            record_cache_bytes: parse_num(source, "AURORA_RECORD_CACHE_BYTES", 4 * 1024 * 1024u64)?,
            service_did,
            service_handle_domains,
            did_plc_url: parse_url(source, "PDS_DID_PLC_URL")?.unwrap_or_else(|| "https://plc.directory".to_owned()),
            jwt_secret,
            dpop_secret: source.get("PDS_DPOP_SECRET").map(|v| Secret::new(v.trim())),
            extra_ca_certs: source.get("AURORA_EXTRA_CA_CERTS").map(std::path::PathBuf::from),
            admin_password,
            moderator_password: match source.get("AURORA_MODERATOR_PASSWORD").map(|v| v.trim().to_owned()) {
                None => None,
                Some(v) if v.is_empty() => None,
                Some(v) if v.len() < MIN_SECRET_LENGTH => {
                    return Err(invalid(
                        "AURORA_MODERATOR_PASSWORD",
                        format!("must be at least {MIN_SECRET_LENGTH} characters"),
                    ))
                }
                Some(v) => Some(Secret::new(v)),
            },
            metrics_bind: match source.get("AURORA_METRICS_BIND") {
                None => None,
                Some(raw) => Some(raw.trim().parse().map_err(|_| {
                    invalid("AURORA_METRICS_BIND", format!("expected an ip:port address, found {raw:?}"))
                })?),
            },
            plc_rotation_key_hex,
            invite_required: parse_bool(source, "PDS_INVITE_REQUIRED", false)?,
            dev_mode: parse_bool(source, "PDS_DEV_MODE", false)?,
            crawlers,
            bsky_app_view: pair(source, "PDS_BSKY_APP_VIEW_URL", "PDS_BSKY_APP_VIEW_DID")?,
            report_service,
            chat_service: pair(source, "AURORA_CHAT_URL", "AURORA_CHAT_DID")?,
            mod_service: pair(source, "PDS_MOD_SERVICE_URL", "PDS_MOD_SERVICE_DID")?,
            proxy_max_response_bytes: parse_num(source, "PDS_PROXY_MAX_RESPONSE_SIZE", 10 * 1024 * 1024u64)?,
            email_smtp_url,
            email_from_address,
            // The reference keeps a day of firehose history by default.
            repo_backfill_limit_ms: parse_num(source, "PDS_REPO_BACKFILL_LIMIT_MS", 24 * 60 * 60 * 1000)?,
            account_deletion_grace_secs: parse_num(source, "AURORA_ACCOUNT_DELETION_GRACE_SECS", 0u64)?,
            firehose_buffer: parse_num(source, "AURORA_FIREHOSE_BUFFER", 500usize)?.max(1),
            firehose_max_subscribers: parse_num(source, "AURORA_FIREHOSE_MAX_SUBSCRIBERS", 5000usize)?.max(1),
            firehose_max_per_ip: parse_num(source, "AURORA_FIREHOSE_MAX_PER_IP", 32usize)?.max(1),
            accepting_repo_imports: parse_bool(source, "PDS_ACCEPTING_REPO_IMPORTS", true)?,
            max_repo_import_size: parse_num(source, "PDS_MAX_REPO_IMPORT_SIZE", 512 * 1024 * 1024)?,
            privacy_policy_url: parse_url(source, "PDS_PRIVACY_POLICY_URL")?,
            terms_of_service_url: parse_url(source, "PDS_TERMS_OF_SERVICE_URL")?,
            contact_email_address: source.get("PDS_CONTACT_EMAIL_ADDRESS"),
            log_format,
            dns_resolver: match source.get("AURORA_DNS_RESOLVER") {
                None => None,
                Some(raw) => Some(raw.trim().parse().map_err(|_| {
                    invalid("AURORA_DNS_RESOLVER", format!("expected an ip:port address, found {raw:?}"))
                })?),
            },
            data_dir,
            dev_secrets,
            rate_limits: crate::rate_limit::RateLimitConfig::from_source(source)?,
            trusted_proxies: crate::rate_limit::client_ip::parse_ranges(
                &source
                    .get("AURORA_TRUSTED_PROXIES")
                    .unwrap_or_else(|| crate::rate_limit::client_ip::DEFAULT_TRUSTED.to_owned()),
            )
            .map_err(|message| invalid("AURORA_TRUSTED_PROXIES", message))?,
            password_hash_threads: parse_num(
                source,
                "AURORA_PASSWORD_HASH_THREADS",
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            )?
            .max(1),
            password_hash_queue: parse_num(
                source,
                "AURORA_PASSWORD_HASH_QUEUE",
                crate::account::hash_pool::DEFAULT_QUEUE,
            )?,
            max_connections_per_ip: parse_num(source, "AURORA_MAX_CONNECTIONS_PER_IP", 256usize)?.max(1),
            header_timeout: secs(source, "AURORA_HEADER_TIMEOUT_SECS", 20)?,
            idle_timeout: secs(source, "AURORA_IDLE_TIMEOUT_SECS", 60)?,
            write_timeout: secs(source, "AURORA_WRITE_TIMEOUT_SECS", 60)?,
        })
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Generated development secrets, persisted across restarts.
struct DevSecrets {
    path: PathBuf,
    values: BTreeMap<String, String>,
    dirty: bool,
}

impl DevSecrets {
    fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = data_dir.join("dev-secrets.env");
        let mut values = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        values.insert(k.trim().to_owned(), v.trim().to_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ConfigError::Io { path, source }),
        }
        Ok(Self { path, values, dirty: false })
    }

    fn get_or_make(&mut self, var: &str, make: fn() -> String) -> Result<Secret, ConfigError> {
        let value = self.values.entry(var.to_owned()).or_insert_with(|| {
            self.dirty = true;
            make()
        });
        Ok(Secret::new(value.clone()))
    }

    fn save(&self) -> Result<(), ConfigError> {
        if !self.dirty {
            return Ok(());
        }
        let io = |source| ConfigError::Io { path: self.path.clone(), source };
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut text = String::from(
            "# Development secrets generated by Aurora Locus. Set these variables yourself in production.\n",
        );
        for (k, v) in &self.values {
            text.push_str(&format!("{k}={v}\n"));
        }
        write_private(&self.path, text.as_bytes()).map_err(io)
    }
}

/// Writes a file readable only by its owner.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &[(&str, &str)], dir: &Path) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("PDS_DATA_DIRECTORY".into(), dir.display().to_string());
        map
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aurora-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_empty_environment_gives_a_working_local_server_with_persisted_dev_secrets() {
        let dir = temp_dir("defaults");
        let config = Config::from_source(&source(&[], &dir)).expect("defaults work");
        assert_eq!(config.bind, SocketAddr::from(([127, 0, 0, 1], 2583)));
        assert_eq!(config.service_did, "did:web:localhost");
        assert_eq!(config.service_handle_domains, vec![".test"]);
        assert!(config.database_url.starts_with("sqlite://"));
        assert_eq!(config.dev_secrets.len(), 3);
        let again = Config::from_source(&source(&[], &dir)).expect("second start");
        assert_eq!(again.jwt_secret, config.jwt_secret, "dev secrets survive a restart");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_malformed_setting_names_its_variable() {
        let dir = temp_dir("malformed");
        let error = Config::from_source(&source(&[("PDS_PORT", "eighty")], &dir)).expect_err("bad port");
        assert!(error.to_string().starts_with("PDS_PORT:"), "{error}");
        let error = Config::from_source(&source(&[("PDS_INVITE_REQUIRED", "maybe")], &dir)).expect_err("bad bool");
        assert!(error.to_string().starts_with("PDS_INVITE_REQUIRED:"), "{error}");
        let error = Config::from_source(&source(&[("PDS_BSKY_APP_VIEW_URL", "https://api.example")], &dir))
            .expect_err("url without did");
        assert!(error.to_string().starts_with("PDS_BSKY_APP_VIEW_DID:"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let dir = temp_dir("debug");
        let config =
            Config::from_source(&source(&[("PDS_JWT_SECRET", "hunter2-hunter2-hunter2")], &dir)).expect("config");
        assert!(!format!("{config:?}").contains("hunter2"));
        let error = Config::from_source(&source(&[("PDS_JWT_SECRET", "hunter2")], &dir)).expect_err("too short");
        assert!(error.to_string().starts_with("PDS_JWT_SECRET:"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
