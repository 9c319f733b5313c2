//! Scopes in plain words, for the consent page.

use aurora_atproto::permission::{AccountAttr, Aud, IdentityAttr, RepoAction, Scope};

use super::permission_sets::PermissionSet;

/// One thing the app will be able to do.
pub struct Item {
    pub title: String,
    pub detail: String,
    /// Rows of specifics (collections, methods).
    pub rows: Vec<String>,
    /// A permission the person may decline: the form field that keeps it.
    pub optional: Option<&'static str>,
    pub warning: bool,
}

impl Item {
    fn new(title: impl Into<String>, detail: impl Into<String>) -> Item {
        Item { title: title.into(), detail: detail.into(), rows: Vec::new(), optional: None, warning: false }
    }
}

/// The form field that keeps reading the email address when it is optional.
pub const EMAIL_FIELD: &str = "grant_email";

fn actions(scope: &aurora_atproto::permission::RepoScope) -> String {
    let names: Vec<&str> =
        RepoAction::ALL.into_iter().filter(|a| scope.actions().contains(*a)).map(RepoAction::as_str).collect();
    names.join(", ")
}

fn audience(aud: &Aud) -> String {
    match aud {
        Aud::Any => "any service".to_owned(),
        Aud::Service(reference) => {
            let did = reference.split('#').next().unwrap_or(reference);
            match did.strip_prefix("did:web:") {
                Some("api.bsky.app") => "Bluesky app services".to_owned(),
                Some("api.bsky.chat") => "Bluesky chat services".to_owned(),
                Some(domain) => format!("a service run by {}", domain.replace("%3A", ":")),
                None => reference.clone(),
            }
        }
    }
}

/// What the requested scope lets the app do, with the permission sets it includes.
pub fn describe(scope: &str, sets: &[(PermissionSet, Option<String>)]) -> Vec<Item> {
    let scopes: Vec<Scope> = scope.split(' ').filter_map(Scope::parse).collect();
    let has = |wanted: &Scope| scopes.contains(wanted);
    let transition =
        scopes.iter().any(|s| matches!(s, Scope::TransitionGeneric | Scope::TransitionChat | Scope::TransitionEmail));
    let mut items = Vec::new();
    if has(&Scope::TransitionGeneric) {
        items.push(Item::new(
            "Manage your posts, likes, follows, profile and other records",
            "Create, change and delete any public data in your account, and upload files.",
        ));
        items.push(Item::new(
            "Use other services on your behalf",
            "Make authenticated requests to the Bluesky app view and other services, chat excepted.",
        ));
    }
    if has(&Scope::TransitionChat) {
        items.push(Item::new("Read and send your chat messages", ""));
    }
    let email_manage =
        scopes.iter().any(|s| matches!(s, Scope::Account(a) if a.attr() == AccountAttr::Email && a.manages()));
    let email_read = has(&Scope::TransitionEmail)
        || scopes.iter().any(|s| matches!(s, Scope::Account(a) if a.attr() == AccountAttr::Email));
    if email_manage {
        items.push(Item::new("Read and change your email address", ""));
    } else if email_read {
        let mut item = Item::new("Read your email address", "");
        if !transition {
            item.optional = Some(EMAIL_FIELD);
        }
        items.push(item);
    }
    for scope in &scopes {
        match scope {
            Scope::Account(a) if a.attr() == AccountAttr::Repo && a.manages() => {
                items.push(Item::new("Replace your whole repository", "Import a repository in place of everything your account holds."))
            }
            Scope::Account(a) if a.attr() == AccountAttr::Status && a.manages() => {
                items.push(Item::new("Deactivate and reactivate your account", ""))
            }
            Scope::Identity(i) if i.attr() == IdentityAttr::Handle => items.push(Item::new("Change your handle", "")),
            Scope::Identity(_) => items.push(Item {
                warning: true,
                ..Item::new(
                    "Control your whole network identity",
                    "Your handle, keys and hosting: this could lock you out of your account for good. Only grant it to apps you fully trust.",
                )
            }),
            _ => {}
        }
    }
    let repo: Vec<String> = scopes
        .iter()
        .filter_map(|s| match s {
            Scope::Repo(r) => Some(
                r.collections()
                    .iter()
                    .map(|c| {
                        let what = if c == "*" { "any collection".to_owned() } else { c.clone() };
                        format!("{what}: {}", actions(r))
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    if !repo.is_empty() {
        items.push(Item { rows: repo, ..Item::new("Publish changes to your records", "") });
    }
    let blobs: Vec<String> = scopes
        .iter()
        .filter_map(|s| match s {
            Scope::Blob(b) => Some(if b.accept() == ["*/*"] { "any type".to_owned() } else { b.accept().join(", ") }),
            _ => None,
        })
        .collect();
    if !blobs.is_empty() {
        items.push(Item { rows: blobs, ..Item::new("Upload files", "") });
    }
    let rpc: Vec<String> = scopes
        .iter()
        .filter_map(|s| match s {
            Scope::Rpc(r) => {
                let methods = if r.lxm() == ["*"] { "any method".to_owned() } else { r.lxm().join(", ") };
                Some(format!("{methods} on {}", audience(r.aud())))
            }
            _ => None,
        })
        .collect();
    if !rpc.is_empty() {
        items.push(Item { rows: rpc, ..Item::new("Act on your behalf towards other services", "") });
    }
    for (set, aud) in sets {
        let title = set.title.clone().unwrap_or_else(|| set.nsid.to_string());
        let detail = set.detail.clone().unwrap_or_default();
        items.push(Item { rows: set.expand(aud.as_deref()), ..Item::new(title, detail) });
    }
    if items.is_empty() {
        items.push(Item::new("Know who you are", "Your account's identity (DID and handle), and nothing of its data."));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_plain_words() {
        let titles = |scope: &str| describe(scope, &[]).into_iter().map(|i| i.title).collect::<Vec<_>>();
        assert_eq!(titles("atproto"), vec!["Know who you are"]);
        assert!(titles("atproto transition:generic")[0].starts_with("Manage your posts"));
        let items = describe("atproto account:email repo:app.bsky.feed.post?action=create", &[]);
        assert_eq!(items[0].optional, Some(EMAIL_FIELD), "email may be declined");
        assert_eq!(items[1].rows, vec!["app.bsky.feed.post: create"]);
        assert!(describe("atproto identity:*", &[])[0].warning);
    }
}
