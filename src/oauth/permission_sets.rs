//! Permission sets (`include:<nsid>` scopes): lexicons of type `permission-set` that an app's
//! publisher hosts (found by `lexicon_resolution`), expanded into the repo and rpc
//! permissions they list.

use std::collections::BTreeMap;

use serde_json::Value;

use aurora_atproto::permission::Scope;
use aurora_atproto::syntax::Nsid;

use super::error::OAuthError;
use crate::context::AppContext;

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

/// The permission set `nsid` names.
pub async fn resolve(ctx: &AppContext, nsid: &Nsid) -> Result<PermissionSet, ResolveError> {
    let resolved = crate::lexicon_resolution::resolve(ctx, nsid).await.ok_or(ResolveError::NotFound)?;
    let main = &resolved.document["defs"]["main"];
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
