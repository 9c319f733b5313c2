//! atproto OAuth scopes and the permissions they grant (the atproto permission spec): parsing a
//! scope string, deciding whether a request is allowed, and naming the scope a refused request
//! would have needed.
//!
//! A scope is `atproto`, a `transition:` scope, or a resource permission
//! `<resource>[:<positional>][?<query>]` for `repo`, `blob`, `rpc`, `account`, `identity` or
//! `include`. A token that does not parse is ignored, never an error: scopes a server does not
//! understand grant nothing.

mod resource;
mod syntax;

pub use resource::{
    AccountAttr, AccountScope, Actions, Aud, BlobScope, IdentityAttr, IdentityScope, IncludeScope, RepoAction,
    RepoScope, RpcScope,
};

/// One scope token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Atproto,
    /// What an app password may do: any record, any blob, any non-chat service call.
    TransitionGeneric,
    /// Chat service calls (`chat.bsky.*`).
    TransitionChat,
    /// Reading the account's email address.
    TransitionEmail,
    Repo(RepoScope),
    Blob(BlobScope),
    Rpc(RpcScope),
    Account(AccountScope),
    Identity(IdentityScope),
    Include(IncludeScope),
}

impl Scope {
    /// The scope a token names, or `None` when it is not one (unknown, malformed, or
    /// breaking its resource's rules).
    pub fn parse(token: &str) -> Option<Scope> {
        match token {
            "atproto" => return Some(Scope::Atproto),
            "transition:generic" => return Some(Scope::TransitionGeneric),
            "transition:chat.bsky" => return Some(Scope::TransitionChat),
            "transition:email" => return Some(Scope::TransitionEmail),
            _ => {}
        }
        let parts = syntax::Parts::split(token)?;
        match parts.resource {
            "repo" => RepoScope::from_parts(&parts).map(Scope::Repo),
            "blob" => BlobScope::from_parts(&parts).map(Scope::Blob),
            "rpc" => RpcScope::from_parts(&parts).map(Scope::Rpc),
            "account" => AccountScope::from_parts(&parts).map(Scope::Account),
            "identity" => IdentityScope::from_parts(&parts).map(Scope::Identity),
            "include" => IncludeScope::from_parts(&parts).map(Scope::Include),
            _ => None,
        }
    }

    /// The canonical spelling: defaults dropped, values sorted, one positional value written
    /// positionally.
    pub fn canonical(&self) -> String {
        match self {
            Scope::Atproto => "atproto".to_owned(),
            Scope::TransitionGeneric => "transition:generic".to_owned(),
            Scope::TransitionChat => "transition:chat.bsky".to_owned(),
            Scope::TransitionEmail => "transition:email".to_owned(),
            Scope::Repo(s) => s.canonical(),
            Scope::Blob(s) => s.canonical(),
            Scope::Rpc(s) => s.canonical(),
            Scope::Account(s) => s.canonical(),
            Scope::Identity(s) => s.canonical(),
            Scope::Include(s) => s.canonical(),
        }
    }
}

/// Whether `scope` is a well-formed OAuth scope parameter: tokens of printable ASCII other than
/// `"` and `\`, separated by single spaces.
pub fn is_scope_parameter(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
}

/// Something a request does that a permission must allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need<'a> {
    Repo { collection: &'a str, action: RepoAction },
    Blob { mime: &'a str },
    Rpc { aud: &'a str, lxm: &'a str },
    Account { attr: AccountAttr, manage: bool },
    Identity(IdentityAttr),
}

impl Need<'_> {
    /// The smallest scope that allows this, as the "missing scope" answer names it.
    pub fn scope(&self) -> String {
        match self {
            Need::Repo { collection, action } => format!("repo:{collection}?action={}", action.as_str()),
            Need::Blob { mime } => format!("blob:{}", mime.to_ascii_lowercase()),
            Need::Rpc { aud, lxm } => format!("rpc:{lxm}?aud={}", syntax::encode_query_value(aud)),
            Need::Account { attr, manage: false } => format!("account:{}", attr.as_str()),
            Need::Account { attr, manage: true } => format!("account:{}?action=manage", attr.as_str()),
            Need::Identity(attr) => format!("identity:{}", attr.as_str()),
        }
    }
}

/// What an access token's scopes allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    atproto: bool,
    generic: bool,
    chat: bool,
    email: bool,
    granted: Vec<Scope>,
}

impl Permissions {
    /// The permissions of a space-separated scope string; tokens that are not scopes are
    /// ignored.
    pub fn from_scope(scope: &str) -> Permissions {
        let mut permissions = Permissions::default();
        for scope in scope.split(' ').filter_map(Scope::parse) {
            match scope {
                Scope::Atproto => permissions.atproto = true,
                Scope::TransitionGeneric => permissions.generic = true,
                Scope::TransitionChat => permissions.chat = true,
                Scope::TransitionEmail => permissions.email = true,
                other => permissions.granted.push(other),
            }
        }
        permissions
    }

    /// Whether the `atproto` scope is there, without which a token grants nothing.
    pub fn has_atproto(&self) -> bool {
        self.atproto
    }

    pub fn has_transition_generic(&self) -> bool {
        self.generic
    }

    /// Whether `need` is allowed: by a transition scope, or by a granted permission.
    pub fn allows(&self, need: &Need<'_>) -> bool {
        let transition = match need {
            Need::Repo { .. } | Need::Blob { .. } => self.generic,
            Need::Rpc { lxm, .. } if lxm.starts_with("chat.bsky.") => self.chat,
            Need::Rpc { .. } => self.generic,
            Need::Account { attr: AccountAttr::Email, manage: false } => self.email,
            Need::Account { .. } | Need::Identity(_) => false,
        };
        transition
            || self.granted.iter().any(|scope| match (scope, need) {
                (Scope::Repo(s), Need::Repo { collection, action }) => s.allows(collection, *action),
                (Scope::Blob(s), Need::Blob { mime }) => s.allows(mime),
                (Scope::Rpc(s), Need::Rpc { aud, lxm }) => s.allows(aud, lxm),
                (Scope::Account(s), Need::Account { attr, manage }) => s.allows(*attr, *manage),
                (Scope::Identity(s), Need::Identity(attr)) => s.allows(*attr),
                _ => false,
            })
    }

    /// The permissions granted beyond `atproto` and the transition scopes.
    pub fn granted(&self) -> &[Scope] {
        &self.granted
    }
}

#[cfg(test)]
mod tests;
