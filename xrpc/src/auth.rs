//! The authentication seam: how each method authenticates its caller (generated from
//! `codegen/method-auth.json` as [`Method::AUTH`](crate::Method::AUTH)), and the typed
//! credential its handler receives. The runtime authenticates every request before its handler
//! runs, through the server's [`Authenticator`]; a handler never checks credentials itself.

use std::future::Future;

use std::sync::Arc;

use aurora_atproto::permission::{AccountAttr, IdentityAttr, Need, Permissions};
use aurora_atproto::syntax::{Did, Nsid};

use crate::{RequestContext, XrpcError, XrpcResult};

/// How much of an account a session credential must be allowed to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Any session, app passwords included.
    Standard,
    /// A session opened with the account password, or with a privileged app password.
    Privileged,
    /// A session opened with the account password.
    Full,
}

/// What a method asks of an OAuth access token (the atproto permission an app must have been
/// granted), in place of the session level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthRule {
    /// Any OAuth token.
    Any,
    /// None: the method is for the account holder's own sessions (the message says where to go).
    Refused(&'static str),
    /// `account:<attr>`, to read or (`true`) manage.
    Account(AccountAttr, bool),
    /// `identity:handle` or `identity:*`.
    Identity(IdentityAttr),
    /// `blob:<the upload's MIME type>`.
    Blob,
    /// `rpc:<method>?aud=<the service the call is for>`.
    Rpc,
    /// The handler asks for what the request needs (records written, a service token's
    /// audience) once it has read the request.
    Handler,
}

/// The message of a method closed to OAuth tokens.
pub const OAUTH_NOT_SUPPORTED: &str = "OAuth credentials are not supported for this endpoint";

/// What a method asks of a session credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRule {
    pub level: Level,
    /// Whether a taken-down account's session (which can only learn its status) is accepted.
    pub takendown: bool,
    /// Whether the account is looked up on every request: it must exist and not be taken down,
    /// so a takedown stops its tokens at once rather than when they expire.
    pub checked: bool,
    /// What an OAuth token must allow.
    pub oauth: OAuthRule,
}

impl AccessRule {
    pub const STANDARD: AccessRule =
        AccessRule { level: Level::Standard, takendown: false, checked: false, oauth: OAuthRule::Any };
    pub const PRIVILEGED: AccessRule =
        AccessRule { level: Level::Privileged, takendown: false, checked: false, oauth: OAuthRule::Any };
    pub const FULL: AccessRule =
        AccessRule { level: Level::Full, takendown: false, checked: false, oauth: OAuthRule::Any };

    pub const fn oauth(self, oauth: OAuthRule) -> AccessRule {
        AccessRule { oauth, ..self }
    }

    pub const fn with_takendown(self) -> AccessRule {
        AccessRule { takendown: true, ..self }
    }

    pub const fn checked(self) -> AccessRule {
        AccessRule { checked: true, ..self }
    }
}

/// How a method authenticates its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Public: credentials, if any, are not looked at.
    None,
    /// Public, with more for a caller who sends a session credential (which must then be valid).
    Optional,
    /// A session credential.
    Access(AccessRule),
    /// A session credential, or a service-auth token from a service acting for the account
    /// (which `lxm` in the token tells apart).
    AccessOrService(AccessRule),
    /// A refresh token; `allow_expired` for signing out with one that has run out.
    Refresh { allow_expired: bool },
    /// The administrator's basic credentials.
    Admin,
    /// Someone who moderates: the administrator, a moderator (basic credentials), or the
    /// configured moderation service (a service-auth token it signed for this method).
    Moderator,
    /// A service-auth token another atproto service signed for this server and method.
    Service,
    /// A service-auth token when one is sent (an account moving here), else public.
    ServiceOptional,
    /// Public, with more for the account itself (a session meeting the rule) or the
    /// administrator; credentials, when sent, must be valid.
    OptionalOrAdmin(AccessRule),
}

/// How a session credential was granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// A session opened with the account password.
    Session,
    /// A session opened with an app password.
    AppPassword { privileged: bool },
    /// A taken-down account that signed in to learn its status.
    Takendown,
    /// An OAuth access token: an app the account authorized, with the permissions granted.
    OAuth(OAuthGrant),
}

/// What an OAuth access token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthGrant {
    pub client_id: String,
    pub permissions: Arc<Permissions>,
}

/// A permission an OAuth token lacks: 403 `ScopeMissingError`, naming the scope needed.
pub fn scope_missing(need: &Need<'_>) -> XrpcError {
    XrpcError::new(
        poem::http::StatusCode::FORBIDDEN,
        "ScopeMissingError",
        Some(format!("Missing required scope \"{}\"", need.scope())),
    )
}

/// The account a session credential acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub did: Did,
    pub grant: Grant,
}

impl Access {
    /// Whether this credential meets `level`. OAuth tokens are judged by their permissions
    /// instead ([`AccessRule::oauth`], [`Access::permit`]).
    pub fn meets(&self, level: Level) -> bool {
        match (&self.grant, level) {
            (Grant::OAuth(_), _) => true,
            (Grant::Takendown, _) => false,
            (Grant::Session, _) | (Grant::AppPassword { .. }, Level::Standard) => true,
            (Grant::AppPassword { privileged }, Level::Privileged) => *privileged,
            (Grant::AppPassword { .. }, Level::Full) => false,
        }
    }

    /// Whether the account is taken down (its session can only learn its status).
    pub fn is_takendown(&self) -> bool {
        self.grant == Grant::Takendown
    }

    /// Whether the credential allows `need`: a session always does (its level was checked),
    /// an OAuth token when its permissions do.
    pub fn allows(&self, need: &Need<'_>) -> bool {
        match &self.grant {
            Grant::OAuth(grant) => grant.permissions.allows(need),
            _ => true,
        }
    }

    /// [`Access::allows`], or the answer for a missing permission.
    pub fn permit(&self, need: &Need<'_>) -> XrpcResult<()> {
        if self.allows(need) {
            Ok(())
        } else {
            Err(scope_missing(need))
        }
    }

    /// The OAuth grant, when the credential is an OAuth token.
    pub fn oauth(&self) -> Option<&OAuthGrant> {
        match &self.grant {
            Grant::OAuth(grant) => Some(grant),
            _ => None,
        }
    }
}

/// The bearer of a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refresh {
    pub did: Did,
    /// The token's id, which the database tracks for rotation and revocation.
    pub token_id: String,
}

/// Someone who runs the server: what they may do and who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    pub role: Role,
    pub operator: Operator,
}

/// What an operator may do. A moderator reads accounts and applies or lifts takedowns; only
/// the administrator deletes accounts or changes their email, handle or password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Moderator,
    Admin,
}

/// Who an operator is, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The administrator's password (`admin`).
    AdminPassword,
    /// The moderators' shared password (`moderator`).
    ModeratorPassword,
    /// The configured moderation service, by its token's issuer.
    ModService(Did),
}

impl Admin {
    /// The administrator, by password.
    pub const ROOT: Admin = Admin { role: Role::Admin, operator: Operator::AdminPassword };

    /// Whether this operator may call a method of rule `auth` (for callers that reach a method
    /// without the runtime, such as the dashboard, so the rule stays the one in the metadata).
    pub fn may_call(&self, auth: Auth) -> bool {
        match auth {
            Auth::Admin => self.role >= Role::Admin,
            Auth::Moderator | Auth::OptionalOrAdmin(_) => true,
            _ => false,
        }
    }

    /// Who acted, as the audit log names them.
    pub fn name(&self) -> String {
        match &self.operator {
            Operator::AdminPassword => "admin".to_owned(),
            Operator::ModeratorPassword => "moderator".to_owned(),
            Operator::ModService(did) => did.to_string(),
        }
    }
}

/// Another atproto service, or an account acting through one, with a token it signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The issuer's DID (without a `#service` fragment).
    pub iss: Did,
    /// The audience: this server's DID.
    pub aud: Did,
    /// The method the token was minted for.
    pub lxm: Option<Nsid>,
}

/// The caller of a method that takes a session or a service acting for the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Access(Access),
    Service(Service),
}

impl Caller {
    /// The account acted for: the session's, or the token's issuer.
    pub fn did(&self) -> &Did {
        match self {
            Caller::Access(access) => &access.did,
            Caller::Service(service) => &service.iss,
        }
    }
}

/// Who is looking at something public that its owner and the administrator see more of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    Access(Access),
    Admin(Admin),
}

impl Viewer {
    /// Whether this viewer is `did` itself or the administrator.
    pub fn is_self_or_admin(&self, did: &Did) -> bool {
        match self {
            Viewer::Access(access) => access.did == *did,
            Viewer::Admin(_) => true,
        }
    }
}

/// The scheme of an `Authorization` header, as the reference's servers parse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Bearer,
    Dpop,
}

/// Why an `Authorization` header could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not exactly `<scheme> <credentials>`.
    Malformed,
    /// A scheme XRPC does not use.
    UnsupportedScheme(String),
}

impl From<HeaderError> for XrpcError {
    fn from(error: HeaderError) -> Self {
        let message = match error {
            HeaderError::Malformed => "Malformed authorization header".to_owned(),
            HeaderError::UnsupportedScheme(scheme) => format!("Unsupported authorization type: {scheme}"),
        };
        XrpcError::new(poem::http::StatusCode::BAD_REQUEST, "InvalidToken", Some(message))
    }
}

/// The scheme and credentials of the `Authorization` header; `None` without one (an empty
/// header is none).
pub fn authorization(ctx: &RequestContext) -> Result<Option<(Scheme, &str)>, HeaderError> {
    let Some(value) = ctx.header("authorization").filter(|v| !v.is_empty()) else { return Ok(None) };
    let mut parts = value.split(' ');
    let (Some(scheme), Some(credentials), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(HeaderError::Malformed);
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "basic" => Scheme::Basic,
        "bearer" => Scheme::Bearer,
        "dpop" => Scheme::Dpop,
        _ => return Err(HeaderError::UnsupportedScheme(scheme.to_owned())),
    };
    Ok(Some((scheme, credentials)))
}

/// Verifies credentials for the runtime; the server implements it once.
pub trait Authenticator: Send + Sync {
    fn access(&self, ctx: &RequestContext, rule: AccessRule) -> impl Future<Output = XrpcResult<Access>> + Send;
    /// A session meeting `rule`, or a service-auth token for the method.
    fn caller(&self, ctx: &RequestContext, rule: AccessRule) -> impl Future<Output = XrpcResult<Caller>> + Send;
    fn refresh(&self, ctx: &RequestContext, allow_expired: bool) -> impl Future<Output = XrpcResult<Refresh>> + Send;
    /// Basic credentials of an operator whose role is at least `role`.
    fn admin(&self, ctx: &RequestContext, role: Role) -> impl Future<Output = XrpcResult<Admin>> + Send;
    /// An operator's basic credentials, or a token the moderation service signed.
    fn moderator(&self, ctx: &RequestContext) -> impl Future<Output = XrpcResult<Admin>> + Send;
    fn service(&self, ctx: &RequestContext) -> impl Future<Output = XrpcResult<Service>> + Send;
    /// Counts an authenticated request against the method's rate limits, once its credential
    /// (`account`, the DID it acts for) and input are known; `key` is the input field the
    /// method's limits name, if any ([`Authenticator::rate_key_field`]). Returns the headers that
    /// describe the tightest limit, or the 429 refusal.
    fn admit(
        &self,
        _ctx: &RequestContext,
        _account: Option<&Did>,
        _input: Admission,
    ) -> impl Future<Output = XrpcResult<Vec<(&'static str, String)>>> + Send {
        async { Ok(Vec::new()) }
    }
    /// The input field a method's rate limits are keyed or weighed by (a sign-in's identifier,
    /// the writes of applyWrites).
    fn rate_key_field(&self, _nsid: &str) -> Option<&'static str> {
        None
    }
}

/// A credential a handler receives; generated code names the one that goes with each
/// method's [`Auth`].
/// What a rate limit may look at in the request's input: the field
/// [`Authenticator::rate_key_field`] named, when the method has one.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    pub field: Option<serde_json::Value>,
}

pub trait Credential: Sized + Send + 'static {
    /// The account the credential acts for, which per-account rate limits count against.
    fn account(&self) -> Option<&Did> {
        None
    }

    fn authenticate<A: Authenticator + ?Sized>(
        authenticator: &A,
        auth: Auth,
        ctx: &RequestContext,
    ) -> impl Future<Output = XrpcResult<Self>> + Send;
}

/// Generated metadata pairs each [`Auth`] with its credential type; a mismatch is a bug in the
/// generator, answered as an internal error rather than a panic.
fn mismatch(auth: Auth, credential: &str) -> XrpcError {
    XrpcError::internal(format!("method metadata says {auth:?} but its handler takes {credential}"))
}

/// Public methods take no credential.
impl Credential for () {
    async fn authenticate<A: Authenticator + ?Sized>(_: &A, auth: Auth, _: &RequestContext) -> XrpcResult<()> {
        match auth {
            Auth::None => Ok(()),
            other => Err(mismatch(other, "nothing")),
        }
    }
}

impl Credential for Access {
    fn account(&self) -> Option<&Did> {
        Some(&self.did)
    }
    async fn authenticate<A: Authenticator + ?Sized>(a: &A, auth: Auth, ctx: &RequestContext) -> XrpcResult<Access> {
        match auth {
            Auth::Access(rule) => a.access(ctx, rule).await,
            other => Err(mismatch(other, "Access")),
        }
    }
}

impl Credential for Option<Access> {
    fn account(&self) -> Option<&Did> {
        self.as_ref().map(|access| &access.did)
    }
    async fn authenticate<A: Authenticator + ?Sized>(
        a: &A,
        auth: Auth,
        ctx: &RequestContext,
    ) -> XrpcResult<Option<Access>> {
        match auth {
            Auth::Optional if authorization(ctx)?.is_none() => Ok(None),
            Auth::Optional => a.access(ctx, AccessRule::STANDARD).await.map(Some),
            other => Err(mismatch(other, "Option<Access>")),
        }
    }
}

impl Credential for Caller {
    fn account(&self) -> Option<&Did> {
        Some(self.did())
    }
    async fn authenticate<A: Authenticator + ?Sized>(a: &A, auth: Auth, ctx: &RequestContext) -> XrpcResult<Caller> {
        match auth {
            Auth::AccessOrService(rule) => a.caller(ctx, rule).await,
            other => Err(mismatch(other, "Caller")),
        }
    }
}

impl Credential for Option<Viewer> {
    async fn authenticate<A: Authenticator + ?Sized>(
        a: &A,
        auth: Auth,
        ctx: &RequestContext,
    ) -> XrpcResult<Option<Viewer>> {
        let Auth::OptionalOrAdmin(rule) = auth else { return Err(mismatch(auth, "Option<Viewer>")) };
        match authorization(ctx)? {
            None => Ok(None),
            Some((Scheme::Basic, _)) => a.admin(ctx, Role::Moderator).await.map(|admin| Some(Viewer::Admin(admin))),
            Some(_) => a.access(ctx, rule).await.map(|access| Some(Viewer::Access(access))),
        }
    }
}

impl Credential for Refresh {
    async fn authenticate<A: Authenticator + ?Sized>(a: &A, auth: Auth, ctx: &RequestContext) -> XrpcResult<Refresh> {
        match auth {
            Auth::Refresh { allow_expired } => a.refresh(ctx, allow_expired).await,
            other => Err(mismatch(other, "Refresh")),
        }
    }
}

impl Credential for Admin {
    async fn authenticate<A: Authenticator + ?Sized>(a: &A, auth: Auth, ctx: &RequestContext) -> XrpcResult<Admin> {
        match auth {
            Auth::Admin => a.admin(ctx, Role::Admin).await,
            Auth::Moderator => a.moderator(ctx).await,
            other => Err(mismatch(other, "Admin")),
        }
    }
}

impl Credential for Service {
    async fn authenticate<A: Authenticator + ?Sized>(a: &A, auth: Auth, ctx: &RequestContext) -> XrpcResult<Service> {
        match auth {
            Auth::Service => a.service(ctx).await,
            other => Err(mismatch(other, "Service")),
        }
    }
}

impl Credential for Option<Service> {
    async fn authenticate<A: Authenticator + ?Sized>(
        a: &A,
        auth: Auth,
        ctx: &RequestContext,
    ) -> XrpcResult<Option<Service>> {
        if auth != Auth::ServiceOptional {
            return Err(mismatch(auth, "Option<Service>"));
        }
        match authorization(ctx)? {
            None => Ok(None),
            Some((Scheme::Bearer, _)) => a.service(ctx).await.map(Some),
            // Only a service-auth token could be meant; any other credential is a mistake.
            Some(_) => Err(XrpcError::auth_required("Invalid authorization header")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(grant: Grant) -> Access {
        Access { did: "did:plc:alice".parse().expect("did"), grant }
    }

    #[test]
    fn an_app_password_meets_the_standard_level_and_a_privileged_one_the_privileged_level() {
        let plain = access(Grant::AppPassword { privileged: false });
        let privileged = access(Grant::AppPassword { privileged: true });
        let session = access(Grant::Session);
        assert!(plain.meets(Level::Standard) && !plain.meets(Level::Privileged) && !plain.meets(Level::Full));
        assert!(privileged.meets(Level::Privileged) && !privileged.meets(Level::Full));
        assert!(session.meets(Level::Full));
        assert!(!access(Grant::Takendown).meets(Level::Standard));
    }
}
