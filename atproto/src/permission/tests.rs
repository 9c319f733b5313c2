use super::*;

fn canonical(token: &str) -> Option<String> {
    Scope::parse(token).map(|s| s.canonical())
}

#[test]
fn repo_scopes_parse_normalise_and_match() {
    assert_eq!(
        canonical("repo:app.bsky.feed.post?action=create&action=update&action=delete").as_deref(),
        Some("repo:app.bsky.feed.post")
    );
    assert_eq!(
        canonical("repo?collection=b.b.b&collection=a.a.a").as_deref(),
        Some("repo?collection=a.a.a&collection=b.b.b")
    );
    assert_eq!(
        canonical("repo:app.bsky.feed.post?action=delete&action=create").as_deref(),
        Some("repo:app.bsky.feed.post?action=create&action=delete")
    );
    assert_eq!(canonical("repo?collection=a.b.c&collection=*").as_deref(), Some("repo:*"));
    for invalid in [
        "repo:com.example",
        "repo:a.b.c?foo=bar",
        "repo:a.b.c?collection=d.e.f",
        "repo:com.example.*",
        "repo",
        "repository:a.b.c",
        "repo:a.b.c?action=read",
        "repo:%E0%A4%A",
    ] {
        assert_eq!(Scope::parse(invalid), None, "{invalid}");
    }
    let p = Permissions::from_scope("atproto repo:app.bsky.feed.post?action=create");
    assert!(p.allows(&Need::Repo { collection: "app.bsky.feed.post", action: RepoAction::Create }));
    assert!(!p.allows(&Need::Repo { collection: "app.bsky.feed.post", action: RepoAction::Delete }));
    assert!(!p.allows(&Need::Repo { collection: "app.bsky.feed.like", action: RepoAction::Create }));
    assert!(!p.allows(&Need::Repo { collection: "APP.bsky.feed.post", action: RepoAction::Create }), "exact match");
}

#[test]
fn blob_scopes_match_by_type_case_sensitively() {
    assert_eq!(canonical("blob?accept=image/png&accept=image/*").as_deref(), Some("blob:image/*"));
    assert_eq!(canonical("blob:image/svg+xml").as_deref(), Some("blob:image/svg+xml"));
    for invalid in ["blob:*", "blob:*/png", "blob?accept=image/svg+xml", "blob:image", "blob:a/b/c"] {
        assert_eq!(Scope::parse(invalid), None, "{invalid}");
    }
    let p = Permissions::from_scope("atproto blob:image/*");
    assert!(p.allows(&Need::Blob { mime: "image/png" }));
    assert!(!p.allows(&Need::Blob { mime: "video/mp4" }));
    assert!(!p.allows(&Need::Blob { mime: "IMAGE/PNG" }));
    assert!(Permissions::from_scope("atproto blob:*/*").allows(&Need::Blob { mime: "video/mp4" }));
    assert_eq!(Need::Blob { mime: "Video/MP4" }.scope(), "blob:video/mp4");
}

#[test]
fn rpc_scopes_need_a_service_audience() {
    let aud = "did:web:api.bsky.app#bsky_appview";
    assert_eq!(
        canonical("rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview").as_deref(),
        Some("rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview")
    );
    for invalid in [
        "rpc:a.b.c",
        "rpc:a.b.c?aud=did:plc:abc",
        "rpc:*?aud=*",
        "rpc:a.b.c?aud=did:key:zabc%23x",
        "rpc:a.b.c?aud=did:web:x.com:path%23svc",
    ] {
        assert_eq!(Scope::parse(invalid), None, "{invalid}");
    }
    let p = Permissions::from_scope("atproto rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview");
    assert!(p.allows(&Need::Rpc { aud, lxm: "app.bsky.feed.getTimeline" }));
    assert!(!p.allows(&Need::Rpc { aud: "did:web:other.example#svc", lxm: "app.bsky.feed.getTimeline" }));
    assert!(Permissions::from_scope("atproto rpc:*?aud=did:web:api.bsky.app%23bsky_appview")
        .allows(&Need::Rpc { aud, lxm: "x.y.z" }));
    assert_eq!(
        Need::Rpc { aud, lxm: "app.bsky.feed.getTimeline" }.scope(),
        "rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview"
    );
}

#[test]
fn account_and_identity_scopes() {
    assert_eq!(canonical("account:email?action=read").as_deref(), Some("account:email"));
    assert_eq!(canonical("account?attr=email").as_deref(), Some("account:email"));
    assert_eq!(
        canonical("account:email?action=read&action=manage").as_deref(),
        Some("account:email?action=read&action=manage")
    );
    assert_eq!(Scope::parse("account:*"), None);
    assert_eq!(Scope::parse("identity:did"), None);
    let p = Permissions::from_scope("atproto account:email?action=manage identity:handle");
    assert!(p.allows(&Need::Account { attr: AccountAttr::Email, manage: false }), "manage implies read");
    assert!(p.allows(&Need::Account { attr: AccountAttr::Email, manage: true }));
    assert!(!p.allows(&Need::Account { attr: AccountAttr::Repo, manage: true }));
    assert!(p.allows(&Need::Identity(IdentityAttr::Handle)));
    assert!(!p.allows(&Need::Identity(IdentityAttr::Any)), "handle does not stand for the whole identity");
    assert!(Permissions::from_scope("atproto identity:*").allows(&Need::Identity(IdentityAttr::Handle)));
}

#[test]
fn transition_scopes_grant_what_app_passwords_could() {
    let generic = Permissions::from_scope("atproto transition:generic");
    assert!(generic.allows(&Need::Repo { collection: "any.thing.here", action: RepoAction::Delete }));
    assert!(generic.allows(&Need::Blob { mime: "video/mp4" }));
    assert!(generic.allows(&Need::Rpc { aud: "did:web:x.com#y", lxm: "app.bsky.feed.getTimeline" }));
    assert!(!generic.allows(&Need::Rpc { aud: "did:web:x.com#y", lxm: "chat.bsky.convo.listConvos" }));
    assert!(!generic.allows(&Need::Account { attr: AccountAttr::Email, manage: false }));
    assert!(!generic.allows(&Need::Identity(IdentityAttr::Handle)));
    let chat = Permissions::from_scope("atproto transition:chat.bsky");
    assert!(chat.allows(&Need::Rpc { aud: "did:web:x.com#y", lxm: "chat.bsky.convo.listConvos" }));
    let email = Permissions::from_scope("atproto transition:email");
    assert!(email.allows(&Need::Account { attr: AccountAttr::Email, manage: false }));
    assert!(!email.allows(&Need::Account { attr: AccountAttr::Email, manage: true }));
    assert!(!Permissions::from_scope("transition:generic").has_atproto());
}

#[test]
fn include_scopes_take_only_a_service_audience() {
    assert_eq!(
        canonical("include:com.example.authFull?aud=did:web:api.example.com%23svc").as_deref(),
        Some("include:com.example.authFull?aud=did:web:api.example.com%23svc")
    );
    assert_eq!(Scope::parse("include:x.y.z?aud=*"), None);
    assert_eq!(Scope::parse("include:x.y.z?aud=did:web:x.com"), None);
}

#[test]
fn scope_parameters_are_single_space_separated_printable_ascii() {
    assert!(is_scope_parameter("atproto transition:generic"));
    assert!(!is_scope_parameter("atproto  transition:generic"));
    assert!(!is_scope_parameter("atproto \"x\""));
    assert!(!is_scope_parameter(""));
}
