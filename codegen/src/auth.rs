//! `codegen/method-auth.json`: how each served method authenticates, and which methods need
//! more than an ordinary session. One source for the runtime's checks (`Endpoint::AUTH`), the
//! credential type each handler receives, the proxy's lists, and the OpenAPI security.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::quote;
use serde::Deserialize;

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    #[serde(rename = "_comment", default)]
    _comment: Option<serde_json::Value>,
    /// NSID (or `namespace.*`) → kind; methods not listed take [`AuthKind::DEFAULT`].
    pub methods: BTreeMap<String, String>,
    /// Methods no service-auth token may be minted for and the proxy never forwards: they
    /// manage the account itself.
    pub protected: Vec<String>,
    /// Methods (served or proxied) that need a full session or a privileged app password.
    pub privileged: Vec<String>,
    /// NSID → what an OAuth token must allow ([`OAuthRule::parse`]); a session method not
    /// listed refuses OAuth tokens.
    #[serde(default)]
    pub oauth: BTreeMap<String, String>,
}

/// What an OAuth access token must allow for a method that takes a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthRule {
    Any,
    /// Refused, with the message (the default one when `None`).
    Refused(Option<String>),
    Account {
        attr: &'static str,
        manage: bool,
    },
    Identity {
        any: bool,
    },
    Blob,
    Rpc,
    /// The handler asks for what the request needs; the text says what.
    Handler(String),
}

impl OAuthRule {
    /// `any`, `refused[: message]`, `account:<email|repo|status>[?action=manage]`,
    /// `identity:handle`, `identity:*`, `blob`, `rpc`, `handler:<what>`.
    pub fn parse(text: &str) -> Option<OAuthRule> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("refused") {
            return match rest.strip_prefix(':') {
                Some(message) if !message.trim().is_empty() => {
                    Some(OAuthRule::Refused(Some(message.trim().to_owned())))
                }
                None if rest.is_empty() => Some(OAuthRule::Refused(None)),
                _ => None,
            };
        }
        if let Some(what) = text.strip_prefix("handler:") {
            return (!what.is_empty()).then(|| OAuthRule::Handler(what.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("account:") {
            let (attr, manage) = match rest.split_once('?') {
                Some((attr, "action=manage")) => (attr, true),
                Some(_) => return None,
                None => (rest, false),
            };
            let attr = match attr {
                "email" => "Email",
                "repo" => "Repo",
                "status" => "Status",
                _ => return None,
            };
            return Some(OAuthRule::Account { attr, manage });
        }
        match text {
            "any" => Some(OAuthRule::Any),
            "identity:handle" => Some(OAuthRule::Identity { any: false }),
            "identity:*" => Some(OAuthRule::Identity { any: true }),
            "blob" => Some(OAuthRule::Blob),
            "rpc" => Some(OAuthRule::Rpc),
            _ => None,
        }
    }

    pub fn tokens(&self) -> TokenStream {
        match self {
            OAuthRule::Any => quote!(rt::OAuthRule::Any),
            OAuthRule::Refused(None) => quote!(rt::OAuthRule::Refused(rt::OAUTH_NOT_SUPPORTED)),
            OAuthRule::Refused(Some(message)) => quote!(rt::OAuthRule::Refused(#message)),
            OAuthRule::Account { attr, manage } => {
                let attr = proc_macro2::Ident::new(attr, proc_macro2::Span::call_site());
                quote!(rt::OAuthRule::Account(rt::AccountAttr::#attr, #manage))
            }
            OAuthRule::Identity { any: false } => quote!(rt::OAuthRule::Identity(rt::IdentityAttr::Handle)),
            OAuthRule::Identity { any: true } => quote!(rt::OAuthRule::Identity(rt::IdentityAttr::Any)),
            OAuthRule::Blob => quote!(rt::OAuthRule::Blob),
            OAuthRule::Rpc => quote!(rt::OAuthRule::Rpc),
            OAuthRule::Handler(_) => quote!(rt::OAuthRule::Handler),
        }
    }

    /// For an OAuth app, in words.
    pub fn describe(&self) -> String {
        match self {
            OAuthRule::Any => "any OAuth token".to_owned(),
            OAuthRule::Refused(_) => "not OAuth tokens".to_owned(),
            OAuthRule::Account { attr, manage } => {
                let action = if *manage { "?action=manage" } else { "" };
                format!("an OAuth token with `account:{}{action}`", attr.to_lowercase())
            }
            OAuthRule::Identity { any: false } => "an OAuth token with `identity:handle`".to_owned(),
            OAuthRule::Identity { any: true } => "an OAuth token with `identity:*`".to_owned(),
            OAuthRule::Blob => "an OAuth token with `blob:` for the upload's type".to_owned(),
            OAuthRule::Rpc => "an OAuth token with `rpc:` for this method and its service".to_owned(),
            OAuthRule::Handler(what) => format!("an OAuth token with {what}"),
        }
    }
}

/// How much of an account a session must be allowed to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Standard,
    Privileged,
    Full,
}

/// One method's rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    None,
    Optional,
    Access {
        level: Level,
        takendown: bool,
        checked: bool,
    },
    /// A session, or a service-auth token (a service acting for the account).
    AccessOrService {
        level: Level,
        takendown: bool,
        checked: bool,
    },
    Refresh {
        allow_expired: bool,
    },
    Admin,
    /// The administrator, a moderator, or the configured moderation service.
    Moderator,
    Service,
    ServiceOptional,
    /// Public; the account itself (a session, taken down or not) or the administrator sees more.
    OptionalOrAdmin {
        takendown: bool,
    },
}

impl AuthKind {
    pub const DEFAULT: &'static str = "access";

    /// Parses a kind: `none`, `optional`, `access`, `access-privileged`, `access-full`,
    /// `access-or-service` (each access kind with optional modifiers `+takendown` and
    /// `+checked`), `refresh`, `refresh-expired`, `admin`, `moderator`, `service`, `service-optional`, `optional-or-admin` (with
    /// `+takendown`).
    pub fn parse(text: &str) -> Option<AuthKind> {
        let mut parts = text.split('+');
        let base = parts.next()?;
        let (mut takendown, mut checked) = (false, false);
        for modifier in parts {
            match modifier {
                "takendown" if !takendown => takendown = true,
                "checked" if !checked => checked = true,
                _ => return None,
            }
        }
        let access = |level| Some(AuthKind::Access { level, takendown, checked });
        let simple = |kind| (!takendown && !checked).then_some(kind);
        match base {
            "access" => access(Level::Standard),
            "access-privileged" => access(Level::Privileged),
            "access-full" => access(Level::Full),
            "access-or-service" => Some(AuthKind::AccessOrService { level: Level::Standard, takendown, checked }),
            "none" => simple(AuthKind::None),
            "optional" => simple(AuthKind::Optional),
            "refresh" => simple(AuthKind::Refresh { allow_expired: false }),
            "refresh-expired" => simple(AuthKind::Refresh { allow_expired: true }),
            "admin" => simple(AuthKind::Admin),
            "moderator" => simple(AuthKind::Moderator),
            "service" => simple(AuthKind::Service),
            "service-optional" => simple(AuthKind::ServiceOptional),
            "optional-or-admin" if !checked => Some(AuthKind::OptionalOrAdmin { takendown }),
            _ => None,
        }
    }

    /// The `rt::Auth` value for `Endpoint::AUTH`.
    pub fn tokens(self, oauth: &OAuthRule) -> TokenStream {
        match self {
            AuthKind::None => quote!(rt::Auth::None),
            AuthKind::Optional => quote!(rt::Auth::Optional),
            AuthKind::Access { level, takendown, checked } => {
                let rule = rule(level, takendown, checked, Some(oauth));
                quote!(rt::Auth::Access(#rule))
            }
            AuthKind::AccessOrService { level, takendown, checked } => {
                let rule = rule(level, takendown, checked, Some(oauth));
                quote!(rt::Auth::AccessOrService(#rule))
            }
            AuthKind::Refresh { allow_expired } => quote!(rt::Auth::Refresh { allow_expired: #allow_expired }),
            AuthKind::Admin => quote!(rt::Auth::Admin),
            AuthKind::Moderator => quote!(rt::Auth::Moderator),
            AuthKind::Service => quote!(rt::Auth::Service),
            AuthKind::ServiceOptional => quote!(rt::Auth::ServiceOptional),
            AuthKind::OptionalOrAdmin { takendown } => {
                let rule = rule(Level::Standard, takendown, false, None);
                quote!(rt::Auth::OptionalOrAdmin(#rule))
            }
        }
    }

    /// Whether the method takes a session, and so has an OAuth rule.
    pub fn takes_session(self) -> bool {
        matches!(self, AuthKind::Access { .. } | AuthKind::AccessOrService { .. })
    }

    /// The credential type the handler receives; `None` for public methods, which take none.
    pub fn credential(self) -> Option<TokenStream> {
        match self {
            AuthKind::None => None,
            AuthKind::Optional => Some(quote!(Option<rt::auth::Access>)),
            AuthKind::Access { .. } => Some(quote!(rt::auth::Access)),
            AuthKind::AccessOrService { .. } => Some(quote!(rt::auth::Caller)),
            AuthKind::Refresh { .. } => Some(quote!(rt::auth::Refresh)),
            AuthKind::Admin | AuthKind::Moderator => Some(quote!(rt::auth::Admin)),
            AuthKind::Service => Some(quote!(rt::auth::Service)),
            AuthKind::ServiceOptional => Some(quote!(Option<rt::auth::Service>)),
            AuthKind::OptionalOrAdmin { .. } => Some(quote!(Option<rt::auth::Viewer>)),
        }
    }

    /// Who may call, in words (module headers and OpenAPI).
    pub fn describe(self) -> String {
        let level = |level, takendown: bool, checked: bool| {
            let mut who = match level {
                Level::Standard => "a session (account password or app password)",
                Level::Privileged => "a session opened with the account password or a privileged app password",
                Level::Full => "a session opened with the account password (no app passwords)",
            }
            .to_owned();
            if takendown {
                who.push_str("; a taken-down account's session is accepted");
            }
            if checked {
                who.push_str("; the account must exist and not be taken down");
            }
            who
        };
        match self {
            AuthKind::None => "public".to_owned(),
            AuthKind::Optional => "public; a session, when sent, must be valid".to_owned(),
            AuthKind::Access { level: l, takendown, checked } => level(l, takendown, checked),
            AuthKind::AccessOrService { level: l, takendown, checked } => {
                format!("{}, or a service-auth token for this method", level(l, takendown, checked))
            }
            AuthKind::Refresh { allow_expired: false } => "a refresh token".to_owned(),
            AuthKind::Refresh { allow_expired: true } => "a refresh token, expired or not".to_owned(),
            AuthKind::Admin => "the administrator (HTTP Basic, user `admin`); a moderator is refused".to_owned(),
            AuthKind::Moderator => "the administrator or a moderator (HTTP Basic, user `admin` or `moderator`), or a service-auth token from the configured moderation service".to_owned(),
            AuthKind::Service => "a service-auth token for this method".to_owned(),
            AuthKind::ServiceOptional => "public, or a service-auth token for this method".to_owned(),
            AuthKind::OptionalOrAdmin { .. } => {
                "public; the account's own session or the administrator also sees it while it is not active".to_owned()
            }
        }
    }

    /// What authentication itself answers beyond the 400s every method documents
    /// (`InvalidToken`, `ExpiredToken`), by HTTP status.
    pub fn errors(self) -> Vec<(u16, Vec<&'static str>)> {
        const SESSION: [&str; 2] = ["AuthMissing", "AuthenticationRequired"];
        const SERVICE: [&str; 7] = [
            "BadJwt",
            "BadJwtType",
            "BadJwtSignature",
            "BadJwtAudience",
            "BadJwtIss",
            "BadJwtLexiconMethod",
            "JwtExpired",
        ];
        let access = |checked: bool| {
            let mut errors = vec![(401, SESSION.to_vec())];
            if checked {
                errors[0].1.push("AccountTakedown");
                errors.push((403, vec!["AccountNotFound"]));
            }
            errors
        };
        match self {
            AuthKind::None | AuthKind::Optional => Vec::new(),
            AuthKind::Access { checked, .. } => access(checked),
            AuthKind::AccessOrService { checked, .. } => {
                let mut errors = access(checked);
                errors[0].1.extend(SERVICE);
                errors
            }
            AuthKind::Refresh { .. } => vec![(401, vec!["AuthMissing", "AuthenticationRequired", "MissingTokenId"])],
            AuthKind::Admin | AuthKind::OptionalOrAdmin { .. } => vec![(401, SESSION.to_vec())],
            AuthKind::Moderator => vec![(401, [&SESSION[..], &SERVICE[..], &["UntrustedIss"][..]].concat())],
            AuthKind::Service => vec![(401, [&SESSION[..], &SERVICE[..]].concat())],
            AuthKind::ServiceOptional => vec![(401, SERVICE.to_vec())],
        }
    }

    /// The OpenAPI security requirements: alternatives, each naming its schemes.
    pub fn security(self) -> serde_json::Value {
        use serde_json::json;
        match self {
            AuthKind::None => json!([]),
            AuthKind::Optional => json!([{}, { "Session": [] }]),
            AuthKind::Access { .. } => json!([{ "Session": [] }]),
            AuthKind::AccessOrService { .. } => json!([{ "Session": [] }, { "ServiceAuth": [] }]),
            AuthKind::Refresh { .. } => json!([{ "Refresh": [] }]),
            AuthKind::Admin => json!([{ "Admin": [] }]),
            AuthKind::Moderator => json!([{ "Admin": [] }, { "Moderator": [] }, { "ModService": [] }]),
            AuthKind::Service => json!([{ "ServiceAuth": [] }]),
            AuthKind::ServiceOptional => json!([{}, { "ServiceAuth": [] }]),
            AuthKind::OptionalOrAdmin { .. } => json!([{}, { "Session": [] }, { "Admin": [] }, { "Moderator": [] }]),
        }
    }
}

fn rule(level: Level, takendown: bool, checked: bool, oauth: Option<&OAuthRule>) -> TokenStream {
    let mut rule = match level {
        Level::Standard => quote!(rt::AccessRule::STANDARD),
        Level::Privileged => quote!(rt::AccessRule::PRIVILEGED),
        Level::Full => quote!(rt::AccessRule::FULL),
    };
    if takendown {
        rule = quote!(#rule.with_takendown());
    }
    if checked {
        rule = quote!(#rule.checked());
    }
    if let Some(oauth) = oauth.filter(|o| **o != OAuthRule::Any) {
        let oauth = oauth.tokens();
        rule = quote!(#rule.oauth(#oauth));
    }
    rule
}

/// The table with every kind parsed.
pub struct AuthTable {
    methods: BTreeMap<String, AuthKind>,
    oauth: BTreeMap<String, OAuthRule>,
    pub protected: Vec<String>,
    pub privileged: Vec<String>,
}

impl AuthTable {
    pub fn parse(text: &str) -> Result<AuthTable, String> {
        let file: AuthFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut methods = BTreeMap::new();
        for (nsid, kind) in file.methods {
            let parsed = AuthKind::parse(&kind).ok_or_else(|| format!("{nsid}: unknown auth kind {kind:?}"))?;
            methods.insert(nsid, parsed);
        }
        let mut oauth = BTreeMap::new();
        for (nsid, rule) in file.oauth {
            let parsed = OAuthRule::parse(&rule).ok_or_else(|| format!("{nsid}: unknown OAuth rule {rule:?}"))?;
            oauth.insert(nsid, parsed);
        }
        Ok(AuthTable { methods, oauth, protected: file.protected, privileged: file.privileged })
    }

    /// What an OAuth token must allow for `nsid`: its entry, else refused.
    pub fn lookup_oauth(&self, nsid: &str) -> OAuthRule {
        self.oauth.get(nsid).cloned().unwrap_or(OAuthRule::Refused(None))
    }

    /// The rule for `nsid`: its own entry, else its namespace's `ns.*` entry, else a session.
    pub fn lookup(&self, nsid: &str) -> AuthKind {
        if let Some(kind) = self.methods.get(nsid) {
            return *kind;
        }
        let namespace = nsid.rsplit_once('.').map_or(nsid, |(ns, _)| ns);
        self.methods.get(&format!("{namespace}.*")).copied().unwrap_or(AuthKind::Access {
            level: Level::Standard,
            takendown: false,
            checked: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_with_their_modifiers_and_nothing_else_does() {
        assert_eq!(
            AuthKind::parse("access-full+takendown"),
            Some(AuthKind::Access { level: Level::Full, takendown: true, checked: false })
        );
        assert_eq!(
            AuthKind::parse("access+checked+takendown"),
            Some(AuthKind::Access { level: Level::Standard, takendown: true, checked: true })
        );
        assert_eq!(AuthKind::parse("refresh-expired"), Some(AuthKind::Refresh { allow_expired: true }));
        assert_eq!(AuthKind::parse("admin+takendown"), None);
        assert_eq!(AuthKind::parse("access+checked+checked"), None);
        assert_eq!(AuthKind::parse("acess"), None);
    }
}
