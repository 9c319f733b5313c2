//! Which handles a person may register on this server.

use aurora_atproto::syntax::Handle;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandleError {
    #[error("{0}")]
    Invalid(String),
    #[error("Reserved handle")]
    Reserved,
    #[error("Not a supported handle domain")]
    UnsupportedDomain,
}

/// Top-level domains no handle may use: they never resolve on the public internet.
const DISALLOWED_TLDS: &[&str] =
    &[".local", ".arpa", ".invalid", ".localhost", ".internal", ".example", ".alt", ".onion"];

/// Names that would impersonate the service, the protocol or common infrastructure.
const RESERVED: &[&str] = &[
    "abuse",
    "account",
    "accounts",
    "admin",
    "administrator",
    "api",
    "app",
    "apps",
    "at",
    "atp",
    "atproto",
    "auth",
    "billing",
    "blog",
    "bluesky",
    "bsky",
    "cdn",
    "config",
    "contact",
    "dashboard",
    "dev",
    "did",
    "dns",
    "docs",
    "email",
    "feed",
    "feeds",
    "ftp",
    "handle",
    "help",
    "home",
    "host",
    "hostmaster",
    "imap",
    "info",
    "invite",
    "lex",
    "lexicon",
    "localhost",
    "login",
    "logout",
    "mail",
    "mailer",
    "moderation",
    "mod",
    "news",
    "nsid",
    "oauth",
    "official",
    "ozone",
    "password",
    "pds",
    "plc",
    "policy",
    "pop",
    "postmaster",
    "privacy",
    "relay",
    "repo",
    "root",
    "security",
    "server",
    "settings",
    "signup",
    "smtp",
    "staff",
    "static",
    "status",
    "support",
    "sysadmin",
    "system",
    "team",
    "terms",
    "test",
    "tid",
    "tos",
    "user",
    "users",
    "webmaster",
    "www",
    "xrpc",
];

/// Fragments of slurs. Matched against the handle with separators removed, so `s-l.u_r` is
/// caught too. Kept short and unambiguous to avoid refusing innocent names.
const OFFENSIVE: &[&str] = &["nigger", "nigga", "faggot", "kike", "chink", "spic", "tranny", "retard"];

/// Normalises and checks a handle someone wants on this server. `domains` are the service
/// handle domains, each starting with a dot. Returns the lowercased handle.
pub fn check_local(raw: &str, domains: &[String]) -> Result<Handle, HandleError> {
    let handle: Handle = raw.parse().map_err(|e| HandleError::Invalid(format!("Invalid handle: {e}")))?;
    let text = handle.as_str();
    if DISALLOWED_TLDS.iter().any(|tld| text.ends_with(tld)) {
        return Err(HandleError::Invalid("Handle TLD is invalid or disallowed".into()));
    }
    let squashed: String = text.chars().filter(|c| !matches!(c, '.' | '-' | '_')).collect();
    if OFFENSIVE.iter().any(|word| squashed.contains(word)) {
        return Err(HandleError::Invalid("Inappropriate language in handle".into()));
    }
    let Some(domain) = domains.iter().find(|d| text.ends_with(d.as_str())) else {
        return Err(HandleError::UnsupportedDomain);
    };
    let front = &text[..text.len() - domain.len()];
    if front.contains('.') {
        return Err(HandleError::Invalid("Invalid characters in handle".into()));
    }
    if front.len() < 3 {
        return Err(HandleError::Invalid("Handle too short".into()));
    }
    if front.len() > 18 {
        return Err(HandleError::Invalid("Handle too long".into()));
    }
    if RESERVED.contains(&front) {
        return Err(HandleError::Reserved);
    }
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec![".test".to_owned()]
    }

    #[test]
    fn a_plain_name_under_a_service_domain_is_accepted_and_lowercased() {
        assert_eq!(check_local("Alice.TEST", &domains()).expect("valid").as_str(), "alice.test");
    }

    #[test]
    fn handles_outside_the_rules_are_refused_with_the_reason() {
        assert_eq!(check_local("al.test", &domains()), Err(HandleError::Invalid("Handle too short".into())));
        assert_eq!(
            check_local("abcdefghijklmnopqrstu.test", &domains()),
            Err(HandleError::Invalid("Handle too long".into()))
        );
        assert_eq!(
            check_local("a.b.test", &domains()),
            Err(HandleError::Invalid("Invalid characters in handle".into()))
        );
        assert_eq!(check_local("admin.test", &domains()), Err(HandleError::Reserved));
        assert_eq!(check_local("alice.example.com", &domains()), Err(HandleError::UnsupportedDomain));
        assert!(matches!(check_local("alice.local", &domains()), Err(HandleError::Invalid(_))));
        assert!(matches!(check_local("not a handle", &domains()), Err(HandleError::Invalid(_))));
    }
}
