//! The resource permissions: what each takes, what it allows, and how it is written canonically.

use super::syntax::{encode_positional, query, Parts};
use crate::syntax::{Did, Nsid};

/// A record-changing action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RepoAction {
    Create,
    Update,
    Delete,
}

impl RepoAction {
    pub const ALL: [RepoAction; 3] = [RepoAction::Create, RepoAction::Update, RepoAction::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            RepoAction::Create => "create",
            RepoAction::Update => "update",
            RepoAction::Delete => "delete",
        }
    }

    fn parse(text: &str) -> Option<RepoAction> {
        RepoAction::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// A set of record actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actions([bool; 3]);

impl Actions {
    pub fn contains(self, action: RepoAction) -> bool {
        self.0[action as usize]
    }

    fn all(self) -> bool {
        self.0.iter().all(|a| *a)
    }
}

/// `repo:<collection>[?action=…]`: writing records of some collections (or `*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoScope {
    /// Sorted, distinct; `["*"]` for any.
    collections: Vec<String>,
    actions: Actions,
}

/// A collection value: an NSID or `*`.
fn collection_value(text: &str) -> bool {
    text == "*" || is_permission_nsid(text)
}

/// NSIDs in permissions follow the syntax rules (and stay as written: matching is exact).
fn is_permission_nsid(text: &str) -> bool {
    text.parse::<Nsid>().is_ok()
}

/// Sorted distinct values, or just `*` when `*` is among several.
fn collapse(mut values: Vec<String>) -> Vec<String> {
    if values.iter().any(|v| v == "*") {
        return vec!["*".to_owned()];
    }
    values.sort();
    values.dedup();
    values
}

impl RepoScope {
    pub(super) fn from_parts(parts: &Parts<'_>) -> Option<RepoScope> {
        if !parts.only_keys(&["collection", "action"]) {
            return None;
        }
        let collections = parts.values("collection", true, true)?;
        if collections.is_empty() || !collections.iter().all(|c| collection_value(c)) {
            return None;
        }
        let actions = parts.values("action", false, true)?;
        let mut set = [actions.is_empty(); 3];
        for action in &actions {
            set[RepoAction::parse(action)? as usize] = true;
        }
        Some(RepoScope { collections: collapse(collections), actions: Actions(set) })
    }

    pub fn allows(&self, collection: &str, action: RepoAction) -> bool {
        self.actions.contains(action) && self.collections.iter().any(|c| c == "*" || c == collection)
    }

    pub fn collections(&self) -> &[String] {
        &self.collections
    }

    pub fn actions(&self) -> Actions {
        self.actions
    }

    pub(super) fn canonical(&self) -> String {
        let mut pairs = Vec::new();
        let positional = match self.collections.as_slice() {
            [one] => format!(":{}", encode_positional(one)),
            many => {
                pairs.extend(many.iter().map(|c| ("collection", c.clone())));
                String::new()
            }
        };
        if !self.actions.all() {
            pairs.extend(
                RepoAction::ALL
                    .into_iter()
                    .filter(|a| self.actions.contains(*a))
                    .map(|a| ("action", a.as_str().to_owned())),
            );
        }
        format!("repo{positional}{}", query(&pairs))
    }
}

/// `blob:<accept>`: uploading blobs of some MIME types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobScope {
    accept: Vec<String>,
}

/// An accept pattern: `type/subtype`, `type/*` or `*/*`.
fn accept_value(text: &str) -> bool {
    let Some((kind, sub)) = text.split_once('/') else { return false };
    if kind.is_empty() || sub.is_empty() || sub.contains('/') || text.contains(' ') {
        return false;
    }
    match (kind.contains('*'), sub.contains('*')) {
        (false, false) => true,
        (false, true) => sub == "*",
        (true, _) => text == "*/*",
    }
}

impl BlobScope {
    pub(super) fn from_parts(parts: &Parts<'_>) -> Option<BlobScope> {
        if !parts.only_keys(&["accept"]) {
            return None;
        }
        let accept = parts.values("accept", true, true)?;
        if accept.is_empty() || !accept.iter().all(|a| accept_value(a)) {
            return None;
        }
        let accept = if accept.iter().any(|a| a == "*/*") {
            vec!["*/*".to_owned()]
        } else {
            let lowered: Vec<String> = accept.iter().map(|a| a.to_ascii_lowercase()).collect();
            let mut kept: Vec<String> = lowered
                .iter()
                .filter(|a| {
                    a.ends_with("/*") || !lowered.contains(&format!("{}/*", a.split('/').next().unwrap_or_default()))
                })
                .cloned()
                .collect();
            kept.sort();
            kept.dedup();
            kept
        };
        Some(BlobScope { accept })
    }

    /// The accepted types: `*/*`, `type/*` or concrete types.
    pub fn accept(&self) -> &[String] {
        &self.accept
    }

    /// Whether an upload of `mime` (a concrete type) is allowed. As in the reference, the
    /// comparison is case-sensitive.
    pub fn allows(&self, mime: &str) -> bool {
        let concrete = mime.split('/').count() == 2 && !mime.contains('*') && !mime.contains(' ');
        concrete
            && self.accept.iter().any(|a| {
                a == "*/*"
                    || a.strip_suffix('*').is_some_and(|prefix| prefix.ends_with('/') && mime.starts_with(prefix))
                    || a == mime
            })
    }

    pub(super) fn canonical(&self) -> String {
        match self.accept.as_slice() {
            [one] => format!("blob:{}", encode_positional(one)),
            many => format!("blob{}", query(&many.iter().map(|a| ("accept", a.clone())).collect::<Vec<_>>())),
        }
    }
}

/// A service audience: any, or one DID's service (`did:…#service`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Aud {
    Any,
    Service(String),
}

impl Aud {
    fn parse(text: &str, any_allowed: bool) -> Option<Aud> {
        if text == "*" {
            return any_allowed.then_some(Aud::Any);
        }
        let (did, fragment) = text.split_once('#')?;
        let did: Did = did.parse().ok()?;
        let web_without_path = did.method() == "web" && !did.as_str()["did:web:".len()..].contains(':');
        let method_ok = did.method() == "plc" || web_without_path;
        (method_ok && !fragment.is_empty() && !fragment.contains('#')).then(|| Aud::Service(text.to_owned()))
    }

    fn as_str(&self) -> &str {
        match self {
            Aud::Any => "*",
            Aud::Service(text) => text,
        }
    }
}

/// `rpc:<lxm>?aud=<service>`: calling methods of other services on the account's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcScope {
    lxm: Vec<String>,
    aud: Aud,
}

impl RpcScope {
    pub(super) fn from_parts(parts: &Parts<'_>) -> Option<RpcScope> {
        if !parts.only_keys(&["lxm", "aud"]) {
            return None;
        }
        let lxm = parts.values("lxm", true, true)?;
        if lxm.is_empty() || !lxm.iter().all(|m| collection_value(m)) {
            return None;
        }
        let aud = match parts.values("aud", false, false)?.as_slice() {
            [one] => Aud::parse(one, true)?,
            _ => return None,
        };
        let lxm = collapse(lxm);
        // Any method of any service is what transition:generic is for.
        if aud == Aud::Any && lxm == ["*"] {
            return None;
        }
        Some(RpcScope { lxm, aud })
    }

    pub fn allows(&self, aud: &str, lxm: &str) -> bool {
        (self.aud == Aud::Any || self.aud.as_str() == aud) && self.lxm.iter().any(|m| m == "*" || m == lxm)
    }

    pub fn lxm(&self) -> &[String] {
        &self.lxm
    }

    pub fn aud(&self) -> &Aud {
        &self.aud
    }

    pub(super) fn canonical(&self) -> String {
        let aud = ("aud", self.aud.as_str().to_owned());
        match self.lxm.as_slice() {
            [one] => format!("rpc:{}{}", encode_positional(one), query(&[aud])),
            many => {
                let mut pairs: Vec<(&str, String)> = many.iter().map(|m| ("lxm", m.clone())).collect();
                pairs.push(aud);
                format!("rpc{}", query(&pairs))
            }
        }
    }
}

/// The account settings an `account:` permission concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountAttr {
    Email,
    Repo,
    Status,
}

impl AccountAttr {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountAttr::Email => "email",
            AccountAttr::Repo => "repo",
            AccountAttr::Status => "status",
        }
    }
}

/// `account:<attr>[?action=read|manage]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountScope {
    attr: AccountAttr,
    read: bool,
    manage: bool,
}

impl AccountScope {
    pub(super) fn from_parts(parts: &Parts<'_>) -> Option<AccountScope> {
        if !parts.only_keys(&["attr", "action"]) {
            return None;
        }
        let attr = match parts.values("attr", true, false)?.as_slice() {
            [one] => match one.as_str() {
                "email" => AccountAttr::Email,
                "repo" => AccountAttr::Repo,
                "status" => AccountAttr::Status,
                _ => return None,
            },
            _ => return None,
        };
        let actions = parts.values("action", false, true)?;
        let (mut read, mut manage) = (actions.is_empty(), false);
        for action in &actions {
            match action.as_str() {
                "read" => read = true,
                "manage" => manage = true,
                _ => return None,
            }
        }
        Some(AccountScope { attr, read, manage })
    }

    /// Managing implies reading.
    pub fn allows(&self, attr: AccountAttr, manage: bool) -> bool {
        self.attr == attr && (self.manage || (!manage && self.read))
    }

    pub fn attr(&self) -> AccountAttr {
        self.attr
    }

    pub fn manages(&self) -> bool {
        self.manage
    }

    pub(super) fn canonical(&self) -> String {
        let mut pairs = Vec::new();
        if self.manage {
            if self.read {
                pairs.push(("action", "read".to_owned()));
            }
            pairs.push(("action", "manage".to_owned()));
        }
        format!("account:{}{}", self.attr.as_str(), query(&pairs))
    }
}

/// What of the account's identity an `identity:` permission concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityAttr {
    Handle,
    /// The whole identity: PLC operations, signing and rotation keys.
    Any,
}

impl IdentityAttr {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityAttr::Handle => "handle",
            IdentityAttr::Any => "*",
        }
    }
}

/// `identity:handle` or `identity:*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityScope {
    attr: IdentityAttr,
}

impl IdentityScope {
    pub(super) fn from_parts(parts: &Parts<'_>) -> Option<IdentityScope> {
        if !parts.only_keys(&["attr"]) {
            return None;
        }
        let attr = match parts.values("attr", true, false)?.as_slice() {
            [one] if one == "handle" => IdentityAttr::Handle,
            [one] if one == "*" => IdentityAttr::Any,
            _ => return None,
        };
        Some(IdentityScope { attr })
    }

    /// `*` allows everything; `handle` only the handle.
    pub fn allows(&self, attr: IdentityAttr) -> bool {
        self.attr == IdentityAttr::Any || self.attr == attr
    }

    pub fn attr(&self) -> IdentityAttr {
        self.attr
    }

    pub(super) fn canonical(&self) -> String {
        format!("identity:{}", self.attr.as_str())
    }
}

/// `include:<nsid>[?aud=<service>]`: a permission set published as a lexicon, expanded by the
/// authorization server into the repo and rpc permissions it lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncludeScope {
    nsid: Nsid,
    aud: Option<String>,
}

impl IncludeScope {
    pub(super) fn from_parts(parts: &Parts<'_>) -> Option<IncludeScope> {
        if !parts.only_keys(&["nsid", "aud"]) {
            return None;
        }
        let nsid = match parts.values("nsid", true, false)?.as_slice() {
            [one] => one.parse().ok()?,
            _ => return None,
        };
        let aud = match parts.values("aud", false, false)?.as_slice() {
            [] => None,
            [one] => match Aud::parse(one, false)? {
                Aud::Service(text) => Some(text),
                Aud::Any => return None,
            },
            _ => return None,
        };
        Some(IncludeScope { nsid, aud })
    }

    pub fn nsid(&self) -> &Nsid {
        &self.nsid
    }

    pub fn aud(&self) -> Option<&str> {
        self.aud.as_deref()
    }

    pub(super) fn canonical(&self) -> String {
        let pairs: Vec<(&str, String)> = self.aud.iter().map(|a| ("aud", a.clone())).collect();
        format!("include:{}{}", self.nsid, query(&pairs))
    }
}
