//! Permission sets (`include:<nsid>` scopes): lexicons of type `permission-set` that an app's
//! publisher hosts, resolved as the atproto lexicon resolution spec says (DNS
//! `_lexicon.<authority>` → DID → its repository's `com.atproto.lexicon.schema` record, proof
//! checked), cached, and expanded into the repo and rpc permissions they list.

use std::collections::BTreeMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;

use aurora_atproto::blockstore::{BlockStore, MemoryBlockStore};
use aurora_atproto::car::{read_car, CarLimits};
use aurora_atproto::commit::Commit;
use aurora_atproto::mst::{Mst, MstKey};
use aurora_atproto::permission::Scope;
use aurora_atproto::syntax::{Did, Nsid};

use super::error::OAuthError;
use crate::context::AppContext;
use crate::db::entities::lexicon_cache;

/// How long a resolved lexicon is used before it is resolved again.
const FRESH_SECS: i64 = 300;
const SCHEMA_COLLECTION: &str = "com.atproto.lexicon.schema";
const MAX_RECORD_CAR_BYTES: usize = 1024 * 1024;

/// A permission set's resolved lexicon document.
#[derive(Clone, Debug)]
pub struct PermissionSet {
    pub nsid: Nsid,
    pub title: Option<String>,
    pub detail: Option<String>,
    permissions: Vec<Value>,
}

/// Checks that every `include:` scope names a permission set that resolves.
pub async fn check_includes(ctx: &AppContext, scope: &str) -> Result<(), OAuthError> {
    for token in scope.split(' ') {
        if let Some(Scope::Include(include)) = Scope::parse(token) {
            resolve(ctx, include.nsid())
                .await
                .map_err(|e| OAuthError::invalid_scope(format!("{e} ({})", include.nsid())))?;
        }
    }
    Ok(())
}

/// The scope with each `include:` replaced by the permissions its set grants (sets first, in
/// order, then the other tokens), as access tokens carry it.
pub async fn expand(ctx: &AppContext, scope: &str) -> Result<String, String> {
    let mut expanded = Vec::new();
    let mut rest = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        match Scope::parse(token) {
            Some(Scope::Include(include)) => {
                let set = resolve(ctx, include.nsid()).await.map_err(|e| format!("{e} ({})", include.nsid()))?;
                expanded.extend(set.expand(include.aud()));
            }
            _ => rest.push(token.to_owned()),
        }
    }
    expanded.extend(rest);
    Ok(expanded.join(" "))
}

impl PermissionSet {
    /// The repo and rpc permissions the set grants, each within the set's own namespace, with
    /// `aud` given to the rpc permissions that inherit it.
    pub fn expand(&self, aud: Option<&str>) -> Vec<String> {
        let nsid = self.nsid.as_str();
        let group = &nsid[..nsid.rfind('.').unwrap_or(0)];
        let within = |value: &str| {
            value.len() > group.len() + 1 && value.starts_with(group) && value[group.len()..].starts_with('.')
        };
        let mut granted = Vec::new();
        for entry in &self.permissions {
            let Some(object) = entry.as_object() else { continue };
            if object.get("type").and_then(Value::as_str) != Some("permission") {
                continue;
            }
            let resource = object.get("resource").and_then(Value::as_str).unwrap_or_default();
            if !matches!(resource, "repo" | "rpc") {
                continue;
            }
            let mut params: BTreeMap<String, Value> = object
                .iter()
                .filter(|(key, _)| !matches!(key.as_str(), "type" | "resource"))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            if resource == "rpc" {
                match params.get("aud").and_then(Value::as_str) {
                    Some("*") | None => {}
                    Some(_) => continue,
                }
                if params.get("inheritAud") == Some(&Value::Bool(true)) && !params.contains_key("aud") {
                    if let Some(aud) = aud {
                        params.remove("inheritAud");
                        params.insert("aud".to_owned(), Value::String(aud.to_owned()));
                    }
                }
            }
            let Some(token) = permission_token(resource, &params) else { continue };
            let Some(scope) = Scope::parse(&token) else { continue };
            let in_namespace = match &scope {
                Scope::Repo(repo) => repo.collections().iter().all(|c| within(c)),
                Scope::Rpc(rpc) => rpc.lxm().iter().all(|m| within(m)),
                _ => false,
            };
            if in_namespace {
                granted.push(scope.canonical());
            }
        }
        granted
    }
}

/// A permission entry's parameters as a scope token (arrays are repeated keys).
fn permission_token(resource: &str, params: &BTreeMap<String, Value>) -> Option<String> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        match value {
            Value::String(text) => {
                query.append_pair(key, text);
            }
            Value::Array(items) => {
                for item in items {
                    query.append_pair(key, item.as_str()?);
                }
            }
            Value::Bool(flag) => {
                query.append_pair(key, &flag.to_string());
            }
            _ => return None,
        }
    }
    let query = query.finish();
    Some(if query.is_empty() { resource.to_owned() } else { format!("{resource}?{query}") })
}

/// Why a set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("Could not resolve Lexicon for NSID")]
    NotFound,
    #[error("Lexicon document is not a permission set")]
    NotAPermissionSet,
}

/// The permission set `nsid` names: from the cache while fresh, else resolved again (the last
/// good copy is kept when that fails).
pub async fn resolve(ctx: &AppContext, nsid: &Nsid) -> Result<PermissionSet, ResolveError> {
    let now = super::now();
    let cached = lexicon_cache::Entity::find_by_id(nsid.clone()).one(&ctx.db).await.ok().flatten();
    if let Some(row) = cached.as_ref().filter(|r| now - r.updated_at < FRESH_SECS) {
        return row.lexicon.as_deref().map_or(Err(ResolveError::NotFound), |doc| parse_set(nsid, doc));
    }
    let fetched = fetch(ctx, nsid).await;
    let (lexicon, uri, succeeded) = match &fetched {
        Some((doc, uri)) => (Some(doc.clone()), Some(uri.clone()), Some(now)),
        None => (
            cached.as_ref().and_then(|r| r.lexicon.clone()),
            cached.as_ref().and_then(|r| r.uri.clone()),
            cached.as_ref().and_then(|r| r.last_succeeded_at),
        ),
    };
    let row = lexicon_cache::ActiveModel {
        nsid: Set(nsid.clone()),
        lexicon: Set(lexicon.clone()),
        uri: Set(uri),
        updated_at: Set(now),
        last_succeeded_at: Set(succeeded),
    };
    let upsert = lexicon_cache::Entity::insert(row).on_conflict(
        OnConflict::column(lexicon_cache::Column::Nsid)
            .update_columns([
                lexicon_cache::Column::Lexicon,
                lexicon_cache::Column::Uri,
                lexicon_cache::Column::UpdatedAt,
                lexicon_cache::Column::LastSucceededAt,
            ])
            .to_owned(),
    );
    if let Err(e) = upsert.exec_without_returning(&ctx.db).await {
        tracing::warn!(%nsid, error = %e, "could not cache a lexicon");
    }
    // Negative entries are only worth keeping while fresh.
    let _ = lexicon_cache::Entity::delete_many()
        .filter(lexicon_cache::Column::Lexicon.is_null())
        .filter(lexicon_cache::Column::UpdatedAt.lt(now - FRESH_SECS))
        .exec(&ctx.db)
        .await;
    lexicon.as_deref().map_or(Err(ResolveError::NotFound), |doc| parse_set(nsid, doc))
}

fn parse_set(nsid: &Nsid, document: &str) -> Result<PermissionSet, ResolveError> {
    let doc: Value = serde_json::from_str(document).map_err(|_| ResolveError::NotFound)?;
    let main = &doc["defs"]["main"];
    if main["type"] != "permission-set" {
        return Err(ResolveError::NotAPermissionSet);
    }
    Ok(PermissionSet {
        nsid: nsid.clone(),
        title: main["title"].as_str().map(str::to_owned),
        detail: main["detail"].as_str().map(str::to_owned),
        permissions: main["permissions"].as_array().cloned().unwrap_or_default(),
    })
}

/// The lexicon document and its AT-URI, fetched from the authority's repository (or read here
/// when the authority is an account of this server); `None` when anything fails.
async fn fetch(ctx: &AppContext, nsid: &Nsid) -> Option<(String, String)> {
    let did = ctx.resolver.did_in_txt(&format!("_lexicon.{}.", nsid.authority_domain())).await?;
    let uri = format!("at://{did}/{SCHEMA_COLLECTION}/{nsid}");
    let record = match local_record(ctx, &did, nsid).await {
        Some(found) => found?,
        None => remote_record(ctx, &did, nsid).await?,
    };
    if record["$type"] != SCHEMA_COLLECTION || record["id"] != nsid.as_str() {
        return None;
    }
    Some((record.to_string(), uri))
}

/// The record from this server's own store, when `did` is hosted here: `Some(None)` when the
/// account or record is not available.
async fn local_record(ctx: &AppContext, did: &Did, nsid: &Nsid) -> Option<Option<Value>> {
    use crate::repo::records::{find, Lookup};
    let collection: Nsid = SCHEMA_COLLECTION.parse().ok()?;
    let rkey = nsid.as_str().parse().ok()?;
    let identifier = aurora_atproto::syntax::AtIdentifier::Did(did.clone());
    match find(&ctx.db, &identifier, &collection, &rkey).await.ok()? {
        Lookup::NoRepo => None,
        Lookup::Unavailable => Some(None),
        Lookup::Found { record, .. } => Some(record.and_then(|r| r.value().ok())),
    }
}

/// The record from the authority's PDS, with the commit and tree path that prove it.
async fn remote_record(ctx: &AppContext, did: &Did, nsid: &Nsid) -> Option<Value> {
    let doc = ctx.resolver.did_doc(did, false).await.ok()?;
    let endpoint = crate::identity::pds_endpoint(did.as_str(), &doc)?;
    let key = crate::identity::atproto_key(did.as_str(), &doc)?;
    let url = format!(
        "{}/xrpc/com.atproto.sync.getRecord?did={did}&collection={SCHEMA_COLLECTION}&rkey={nsid}",
        endpoint.trim_end_matches('/')
    );
    let fetched = ctx.guard.fetch(&url, MAX_RECORD_CAR_BYTES).await.ok()?;
    if fetched.status != 200 {
        return None;
    }
    let (root, blocks) = read_car(&fetched.body[..], CarLimits::default()).await.ok()?;
    let store = MemoryBlockStore::from_blocks(blocks);
    let commit = Commit::from_bytes(&store.get(&root).await.ok()??).ok()?;
    commit.check_did(did).ok()?;
    commit.verify(&key).ok()?;
    let path = MstKey::new(SCHEMA_COLLECTION, nsid.as_str()).ok()?;
    let cid = Mst::load(commit.data).get(&store, &path).await.ok()??;
    let bytes = store.get(&cid).await.ok()??;
    let ipld = aurora_atproto::data::from_dag_cbor(&bytes).ok()?;
    aurora_atproto::data::ipld_to_json(&ipld).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(permissions: Value) -> PermissionSet {
        PermissionSet {
            nsid: "com.example.authFull".parse().expect("nsid"),
            title: None,
            detail: None,
            permissions: permissions.as_array().cloned().expect("array"),
        }
    }

    #[test]
    fn a_set_grants_repo_and_rpc_permissions_inside_its_namespace() {
        let set = set(serde_json::json!([
            { "type": "permission", "resource": "repo", "collection": ["com.example.post"] },
            { "type": "permission", "resource": "repo", "collection": ["com.example.sub.thing"], "action": ["delete"] },
            { "type": "permission", "resource": "rpc", "lxm": ["com.example.getFeed"], "inheritAud": true },
            { "type": "permission", "resource": "rpc", "lxm": ["com.example.getX"], "aud": "*" },
            { "type": "permission", "resource": "repo", "collection": ["org.other.post"] },
            { "type": "permission", "resource": "repo", "collection": ["*"] },
            { "type": "permission", "resource": "blob", "accept": ["*/*"] },
            { "type": "permission", "resource": "rpc", "lxm": ["com.example.getY"], "aud": "did:web:x.com#svc" },
            { "type": "permission", "resource": "repo", "collection": ["com.example.post"], "extra": "x" }
        ]));
        assert_eq!(
            set.expand(Some("did:web:api.example.com#svc")),
            vec![
                "repo:com.example.post",
                "repo:com.example.sub.thing?action=delete",
                "rpc:com.example.getFeed?aud=did:web:api.example.com%23svc",
                "rpc:com.example.getX?aud=*",
            ]
        );
        assert_eq!(
            set.expand(None),
            vec!["repo:com.example.post", "repo:com.example.sub.thing?action=delete", "rpc:com.example.getX?aud=*"]
        );
    }
}
