//! Resolution with a cache: DID documents are kept in the database, served as they are for an
//! hour, refreshed after that (falling back to the cached copy for up to a day if the source
//! is unreachable), and never served older than a day.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::Value;

use aurora_atproto::syntax::{Did, Handle};

use super::guard::{Guard, GuardError};
use crate::db::entities::did_cache;
use crate::plc::{PlcClient, PlcError};

const STALE_SECS: i64 = 60 * 60;
const MAX_AGE_SECS: i64 = 24 * 60 * 60;
const MAX_DOC_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0} could not be found")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub struct Resolver {
    plc: PlcClient,
    dns: TokioResolver,
    dev_mode: bool,
    guard: Guard,
    db: DatabaseConnection,
}

/// A DNS resolver: the server at `dns_server` when given, else the system's configuration.
pub fn dns_resolver(dns_server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let mut options = ResolverOpts::default();
    options.timeout = Duration::from_secs(3);
    options.attempts = 2;
    let builder = match dns_server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            let config = ResolverConfig::from_parts(None, Vec::new(), vec![server]);
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => TokioResolver::builder_tokio().map_err(|e| format!("cannot read the system DNS configuration: {e}"))?,
    };
    builder.with_options(options).build().map_err(|e| e.to_string())
}

impl Resolver {
    /// `dns_server` overrides the system's resolver (AURORA_DNS_RESOLVER).
    pub fn new(
        plc: PlcClient,
        db: DatabaseConnection,
        guard: Guard,
        dns_server: Option<SocketAddr>,
    ) -> Result<Self, String> {
        let dev_mode = guard.dev_mode();
        let dns = dns_resolver(dns_server)?;
        Ok(Self { plc, dns, dev_mode, db, guard })
    }

    /// The DID a handle names: the `_atproto` TXT record, else the HTTPS well-known file.
    /// `fresh` bypasses cached DNS answers (for an explicit identity refresh).
    pub async fn resolve_handle(&self, handle: &Handle, fresh: bool) -> Option<Did> {
        if fresh {
            self.dns.clear_cache();
        }
        if let Some(did) = self.handle_by_dns(handle).await {
            return Some(did);
        }
        self.handle_by_https(handle).await
    }

    async fn handle_by_dns(&self, handle: &Handle) -> Option<Did> {
        self.did_in_txt(&format!("_atproto.{handle}.")).await
    }

    /// The DID a `did=` TXT record at `name` names, if exactly one does (a permission set's
    /// authority publishes `_lexicon.<domain>` this way).
    pub async fn did_in_txt(&self, name: &str) -> Option<Did> {
        let lookup = self.dns.txt_lookup(name).await.ok()?;
        let dids: Vec<Did> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => txt.to_string().strip_prefix("did=")?.parse().ok(),
                _ => None,
            })
            .collect();
        // More than one claim is ambiguous, and ambiguity resolves to nothing.
        match dids.as_slice() {
            [did] => Some(did.clone()),
            _ => None,
        }
    }

    async fn handle_by_https(&self, handle: &Handle) -> Option<Did> {
        let scheme = if self.dev_mode { "http" } else { "https" };
        let url = format!("{scheme}://{handle}/.well-known/atproto-did");
        let fetched = self.guard.fetch(&url, 1024).await.ok()?;
        let (status, body) = (fetched.status, fetched.body);
        let text = String::from_utf8(body).ok()?;
        let did = text.lines().next()?.trim();
        if status != 200 {
            return None;
        }
        did.parse().ok()
    }

    /// The DID document, from the cache when fresh enough.
    pub async fn did_doc(&self, did: &Did, force_refresh: bool) -> Result<Value, ResolveError> {
        let now = crate::auth::now_secs();
        let cached = did_cache::Entity::find_by_id(did.clone()).one(&self.db).await?;
        if let Some(row) = &cached {
            if !force_refresh && now - row.updated_at < STALE_SECS {
                if let Ok(doc) = serde_json::from_str(&row.doc) {
                    return Ok(doc);
                }
            }
        }
        match self.fetch_doc(did).await {
            Ok(doc) => {
                self.store(did, &doc, now).await?;
                Ok(doc)
            }
            Err(ResolveError::Failed(reason)) => match cached {
                // A source that is down should not take its users offline: serve what we had.
                Some(row) if now - row.updated_at < MAX_AGE_SECS => {
                    tracing::warn!(%did, reason, "DID resolution failed; serving the cached document");
                    serde_json::from_str(&row.doc).map_err(|e| ResolveError::Failed(e.to_string()))
                }
                _ => Err(ResolveError::Failed(reason)),
            },
            Err(other) => Err(other),
        }
    }

    /// Drops documents too old to serve even when their source is down, then, past
    /// `max_entries`, the least recently fetched: anyone can make the server resolve DIDs
    /// (resolveDid, resolveHandle), so the cache must not grow without end.
    pub async fn sweep_cache(&self, max_entries: u64) -> Result<u64, DbErr> {
        let now = crate::auth::now_secs();
        let mut removed = did_cache::Entity::delete_many()
            .filter(did_cache::Column::UpdatedAt.lt(now - MAX_AGE_SECS))
            .exec(&self.db)
            .await?
            .rows_affected;
        let newest_kept: Option<i64> = did_cache::Entity::find()
            .select_only()
            .column(did_cache::Column::UpdatedAt)
            .order_by_desc(did_cache::Column::UpdatedAt)
            .offset(max_entries.saturating_sub(1))
            .limit(1)
            .into_tuple()
            .one(&self.db)
            .await?;
        if let Some(threshold) = newest_kept {
            removed += did_cache::Entity::delete_many()
                .filter(did_cache::Column::UpdatedAt.lt(threshold))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(removed)
    }

    async fn store(&self, did: &Did, doc: &Value, now: i64) -> Result<(), DbErr> {
        did_cache::Entity::insert(did_cache::ActiveModel {
            did: Set(did.clone()),
            doc: Set(doc.to_string()),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(did_cache::Column::Did)
                .update_columns([did_cache::Column::Doc, did_cache::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map(|_| ())
    }

    async fn fetch_doc(&self, did: &Did) -> Result<Value, ResolveError> {
        let text = did.as_str();
        let doc = if did.method() == "plc" {
            self.plc.document(did).await.map_err(|e| match e {
                PlcError::NotFound(did) => ResolveError::NotFound(did),
                other => ResolveError::Failed(other.to_string()),
            })?
        } else if let Some(host) = text.strip_prefix("did:web:") {
            // atproto allows did:web only for whole hosts (a port may be percent-encoded).
            if host.contains(':') && !host.contains("%3A") {
                return Err(ResolveError::NotFound(text.to_owned()));
            }
            let host = host.replace("%3A", ":");
            let scheme = if self.dev_mode && host.starts_with("localhost") { "http" } else { "https" };
            let url = format!("{scheme}://{host}/.well-known/did.json");
            let fetched = self.guard.fetch(&url, MAX_DOC_BYTES).await.map_err(|e| match e {
                GuardError::Refused(reason) => ResolveError::NotFound(format!("{did} ({reason})")),
                GuardError::Failed(reason) => ResolveError::Failed(reason),
            })?;
            let (status, body) = (fetched.status, fetched.body);
            if status == 404 || status == 410 {
                return Err(ResolveError::NotFound(text.to_owned()));
            }
            if status != 200 {
                return Err(ResolveError::Failed(format!("{url} answered {status}")));
            }
            serde_json::from_slice(&body).map_err(|e| ResolveError::Failed(format!("{url}: {e}")))?
        } else {
            return Err(ResolveError::NotFound(text.to_owned()));
        };
        if doc["id"].as_str() != Some(text) {
            return Err(ResolveError::Failed(format!("the document for {did} names another DID")));
        }
        Ok(doc)
    }
}
