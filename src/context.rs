//! The one `AppContext`, built in one place from the configuration.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use aurora_atproto::crypto::{KeyType, Keypair};

use crate::auth::{Tokens, Verifier};
use crate::config::Config;
use crate::identity::Resolver;
use crate::keys::KeyVault;
use crate::mail::Mailer;
use crate::plc::PlcClient;

/// Repository snapshots copied at once: a quarter of SQLite's eight pooled connections.
const EXPORTS: usize = 2;

/// Everything a handler needs, shared by all requests.
pub struct AppContext {
    pub config: Config,
    pub db: DatabaseConnection,
    /// On SQLite, the connection repository commits are stored through.
    pub sqlite_writer: Option<crate::db::SqliteWriter>,
    /// Connections for the hottest reads, outside the pool (see `db::Reader`).
    pub reader: Option<Arc<crate::db::Reader>>,
    pub tokens: Tokens,
    pub keys: KeyVault,
    pub plc: PlcClient,
    /// The key this server signs PLC operations with (PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX).
    pub rotation_key: Keypair,
    pub mailer: Mailer,
    pub resolver: Resolver,
    pub writers: crate::repo::writer::Writers,
    pub blobs: crate::blobs::Blobs,
    pub crawlers: crate::crawl::Crawlers,
    pub firehose: crate::firehose::Firehose,
    pub proxy: crate::proxy::Proxy,
    pub oauth: crate::oauth::State,
    /// Outbound fetches to addresses users choose.
    pub guard: crate::identity::Guard,
    /// Session tokens' per-request check against the account's current state.
    pub gate: Arc<crate::auth::gate::Gate>,
    /// The background jobs' last runs.
    pub jobs: crate::jobs::Jobs,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// Repository downloads reading their snapshot at once (each holds a connection meanwhile).
    pub exports: std::sync::Arc<crate::repo::download::Exports>,
    pub storage: crate::storage_quota::StorageQuota,
    /// Records' JSON kept by CID for reads to serve again.
    pub rendered: crate::repo::rendered::RenderedRecords,
}

impl AppContext {
    /// Connects to the database (applying migrations) and assembles the context.
    pub async fn build(config: Config) -> Result<Arc<AppContext>, BuildError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| BuildError::DataDir(config.data_dir.clone(), e))?;
        let rotation_bytes = hex::decode(config.plc_rotation_key_hex.expose()).map_err(|_| BuildError::RotationKey)?;
        let rotation_key =
            Keypair::from_private_bytes(KeyType::K256, &rotation_bytes).map_err(|_| BuildError::RotationKey)?;
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let mut db = crate::db::connect(&config.database_url).await.map_err(BuildError::Database)?;
        let observed = metrics.clone();
        db.set_metric_callback(move |info| observed.statement(info));
        let sqlite_writer = crate::db::SqliteWriter::open(&config.database_url)
            .map_err(|e| BuildError::Database(sea_orm::DbErr::Custom(format!("cannot open the SQLite writer: {e}"))))?;
        for collector in sqlite_writer.iter().flat_map(|writer| writer.stats().collectors()) {
            metrics.adopt(collector);
        }
        let tokens = Tokens::new(config.jwt_secret.expose(), &config.service_did);
        let keys = KeyVault::new(config.plc_rotation_key_hex.expose());
        let plc = PlcClient::new(&config.did_plc_url);
        let mailer = Mailer::from_config(&config).map_err(BuildError::Mail)?.counting(metrics.mail.clone());
        if !mailer.is_smtp() {
            tracing::warn!(
                "NO SMTP CONFIGURED: mail (confirmation and reset codes) is written to files in {} (the log says when, not what). Set PDS_EMAIL_SMTP_URL and PDS_EMAIL_FROM_ADDRESS to send it.",
                config.data_dir.join("outbox").display()
            );
        }
        let blobs = crate::blobs::Blobs::from_config(&config).map_err(BuildError::Blobs)?;
        // With blobs in a bucket, the disk that fills is the data directory's.
        let local_disk = if config.blobstore_s3.is_some() { &config.data_dir } else { &config.blobstore_dir };
        let storage =
            crate::storage_quota::StorageQuota::new(local_disk.clone(), config.min_free_disk, config.temp_blob_quota);
        let proxy = crate::proxy::Proxy::new(config.dev_mode).map_err(BuildError::Resolver)?;
        let log_sync = sqlite_writer.as_ref().map(crate::db::SqliteWriter::log_sync);
        let reader = crate::db::Reader::open(&config.database_url).map(Arc::new);
        let subscriber_limits =
            crate::firehose::Limits { total: config.firehose_max_subscribers, per_ip: config.firehose_max_per_ip };
        let firehose =
            crate::firehose::Firehose::start(db.clone(), config.firehose_buffer, log_sync, subscriber_limits, &metrics)
                .await
                .map_err(BuildError::Database)?;
        let guard = crate::identity::Guard::new(config.dev_mode, config.extra_ca_certs.as_deref(), config.dns_resolver)
            .map_err(BuildError::Resolver)?;
        let resolver =
            Resolver::new(plc.clone(), db.clone(), guard.clone(), config.dns_resolver).map_err(BuildError::Resolver)?;
        let oauth = crate::oauth::State::new(&config).map_err(BuildError::Scratch)?;
        crate::account::hash_pool::HashPool::configure(config.password_hash_threads, config.password_hash_queue);
        let rate_limits = crate::rate_limit::RateLimits::new(config.rate_limits.clone(), metrics.rate_limited.clone())
            .map_err(BuildError::Scratch)?;
        if !rate_limits.enabled() {
            tracing::warn!("rate limits are off (PDS_RATE_LIMITS_ENABLED=false)");
        }
        let gate = Arc::new(crate::auth::gate::Gate::new(&db));
        // Other replicas' commits and account changes, on a database several servers share.
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let gate_listener: Arc<dyn crate::db::notices::Listener> = gate.clone();
            let listeners = vec![firehose.listener(), Arc::downgrade(&gate_listener)];
            tokio::spawn(crate::db::notices::listen(listeners, db.get_postgres_connection_pool().clone()));
        }
        let rendered = crate::repo::rendered::RenderedRecords::new(config.record_cache_bytes);
        Ok(Arc::new(AppContext {
            config,
            db,
            sqlite_writer,
            reader,
            tokens,
            keys,
            plc,
            rotation_key,
            mailer,
            resolver,
            writers: Default::default(),
            blobs,
            crawlers: Default::default(),
            firehose,
            proxy,
            oauth,
            guard,
            gate,
            jobs: Default::default(),
            metrics,
            rate_limits,
            exports: crate::repo::download::Exports::new(EXPORTS),
            storage,
            rendered,
        }))
    }

    /// Credential checks for this server's tokens and admin password.
    pub fn verifier(&self) -> Verifier<'_> {
        Verifier::new(
            &self.tokens,
            self.config.admin_password.expose(),
            self.config.moderator_password.as_ref().map(|s| s.expose()),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(std::path::PathBuf, std::io::Error),
    #[error("database: {0}")]
    Database(sea_orm::DbErr),
    #[error("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX is not a valid secp256k1 private key")]
    RotationKey,
    #[error("identity resolver: {0}")]
    Resolver(String),
    /// The rate limits' or the DPoP replay store's Redis.
    #[error("{0}")]
    Scratch(String),
    #[error("mail: {0}")]
    Mail(crate::mail::MailError),
    #[error("blob store: {0}")]
    Blobs(crate::blobs::BlobError),
}
