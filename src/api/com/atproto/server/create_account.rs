//! `com.atproto.server.createAccount`: a new account with a new did:plc identity, an empty
//! signed repository, and a session.
//!
//! Pipeline: validate → create the identity at the PLC directory (or, for an account moving
//! here, check its service-auth token) → register the account in one transaction
//! (`account::create`) → answer with tokens.

use aurora_atproto::blockstore::MemoryBlockStore;
use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::repo::Repo;
use aurora_generated::com::atproto::server::create_account::{Error, Input, Output};
use aurora_xrpc::auth::Service as ServiceAuth;
use aurora_xrpc::{XrpcError, XrpcResult};

use crate::account::create::{CreateError, Registration};
use crate::account::{self, email, handle, invites, password};
use crate::api::internal;
use crate::auth::Scope;
use crate::context::AppContext;
use crate::keys;
use crate::plc::{self, Operation};

/// Longest password accepted for a new account.
const MAX_PASSWORD: usize = 256;

pub async fn handle(ctx: &AppContext, auth: Option<ServiceAuth>, input: Input) -> XrpcResult<Output> {
    let (handle, email, password) = validate(ctx, &input).await?;
    let mut signing_key = Keypair::generate(KeyType::K256);
    // An existing DID (an account moving here) proves itself with a service-auth token, keeps
    // its identity where it is, and starts deactivated until the move is finished.
    let (did, did_doc, migrating) = match &input.did {
        Some(requested) => {
            if auth.as_ref().map(|a| &a.iss) != Some(requested) {
                return Err(XrpcError::auth_required(format!("Missing auth to create account with did: {requested}")));
            }
            if account::find_actor(&ctx.db, account::Lookup::Did(requested)).await.map_err(internal)?.is_some() {
                return Err(XrpcError::new(
                    poem::http::StatusCode::BAD_REQUEST,
                    "AlreadyExists",
                    Some("Repo already exists".into()),
                ));
            }
            let doc =
                ctx.resolver.did_doc(requested, true).await.map_err(|e| {
                    XrpcError::from(Error::UnresolvableDid(Some(format!("Could not resolve DID: {e}"))))
                })?;
            if let Some(reserved) = keys::take_reserved(ctx, requested).await.map_err(internal)? {
                signing_key = reserved;
            }
            (requested.clone(), doc, true)
        }
        None => {
            let mut rotation_keys = Vec::new();
            if let Some(recovery) = &input.recovery_key {
                aurora_atproto::crypto::PublicKey::from_did_key(recovery)
                    .map_err(|_| XrpcError::invalid_request("recoveryKey must be a did:key"))?;
                rotation_keys.push(recovery.clone());
            }
            rotation_keys.push(ctx.rotation_key.did_key());
            let genesis =
                Operation::genesis(&signing_key.did_key(), rotation_keys, handle.as_str(), &ctx.config.public_url);
            let doc_source = genesis.clone();
            let signed = genesis.sign(&ctx.rotation_key);
            let did = plc::did_for_genesis(&signed);
            ctx.plc.submit(&did, &signed).await.map_err(XrpcError::from)?;
            let doc = plc::doc_for(&did, &doc_source);
            (did, doc, false)
        }
    };

    let (_, commit) =
        Repo::create(MemoryBlockStore::new(), did.clone(), &signing_key, Vec::new()).await.map_err(internal)?;
    let password_hash = password::hash(password).await?;
    let refresh_id = crate::auth::tokens_new_refresh_id();
    let holder = crate::auth::Holder { did: &did, generation: 0, app_password: None };
    let pair = ctx.tokens.pair(&holder, Scope::Access, &refresh_id);

    let registration = Registration {
        did: &did,
        handle: &handle,
        email: &email,
        password_hash,
        signing_key: &signing_key,
        invite_code: input.invite_code.as_deref(),
        commit: &commit,
        refresh_id: &refresh_id,
        refresh_expires_at: pair.refresh_expires_at,
        deactivated: migrating,
    };
    account::create::register(ctx, registration).await.map_err(|e| match e {
        // A concurrent sign-up took the handle, the email or the invite's last use between the
        // checks and the transaction.
        CreateError::HandleTaken => XrpcError::invalid_request("Handle already taken"),
        CreateError::EmailTaken => XrpcError::invalid_request("Email already taken"),
        CreateError::InviteUsedUp => Error::InvalidInviteCode(Some("Provided invite code not available".into())).into(),
        CreateError::Db(e) => internal(e),
    })?;

    Ok(Output {
        did,
        handle,
        did_doc: Some(did_doc.into()),
        access_jwt: pair.access_jwt,
        refresh_jwt: pair.refresh_jwt,
        extra: Default::default(),
    })
}

/// Checks everything that can be checked before any identity is created.
async fn validate(ctx: &AppContext, input: &Input) -> XrpcResult<(aurora_xrpc::codegen::Handle, String, String)> {
    if input.plc_op.is_some() {
        return Err(XrpcError::invalid_request("Unsupported input: \"plcOp\""));
    }
    if input.password.as_ref().is_some_and(|p| p.len() > MAX_PASSWORD) {
        return Err(XrpcError::invalid_request(format!(
            "Password too long. Maximum length is {MAX_PASSWORD} characters."
        )));
    }
    // The reference signs up accounts without a password (for an entryway to manage); here an
    // account nobody could sign in to is refused.
    let Some(password) = input.password.clone().filter(|p| !p.is_empty()) else {
        return Err(Error::InvalidPassword(Some("A password is required".into())).into());
    };
    match input.invite_code.as_deref() {
        None if ctx.config.invite_required => {
            return Err(Error::InvalidInviteCode(Some("No invite code provided".into())).into());
        }
        // A code given when none is required is still checked: a wrong one is a mistake worth reporting.
        Some(code) if !invites::is_available(&ctx.db, code).await.map_err(internal)? => {
            return Err(Error::InvalidInviteCode(Some("Provided invite code not available".into())).into());
        }
        _ => {}
    }
    let Some(email) = input.email.as_deref().map(str::trim).map(str::to_lowercase) else {
        return Err(XrpcError::invalid_request("Email is required"));
    };
    if !email::is_valid(&email) {
        return Err(XrpcError::invalid_request("This email address is not supported, please use a different email."));
    }
    let handle = match handle::check_local(input.handle.as_str(), &ctx.config.service_handle_domains) {
        Ok(handle) => handle,
        Err(handle::HandleError::Invalid(message)) => return Err(Error::InvalidHandle(Some(message)).into()),
        Err(handle::HandleError::Reserved) => {
            return Err(Error::HandleNotAvailable(Some("Reserved handle".into())).into())
        }
        // An account moving here may keep a handle on its own domain, if that still names it.
        Err(handle::HandleError::UnsupportedDomain) => match &input.did {
            Some(did) => {
                let handle = input.handle.clone();
                if ctx.resolver.resolve_handle(&handle, true).await.as_ref() != Some(did) {
                    return Err(XrpcError::invalid_request("External handle did not resolve to DID"));
                }
                handle
            }
            None => return Err(Error::UnsupportedDomain(Some("Not a supported handle domain".into())).into()),
        },
    };
    if account::handle_taken(&ctx.db, &handle).await.map_err(internal)? {
        return Err(XrpcError::invalid_request(format!("Handle already taken: {handle}")));
    }
    if account::email_taken(&ctx.db, &email).await.map_err(internal)? {
        return Err(XrpcError::invalid_request(format!("Email already taken: {email}")));
    }
    Ok((handle, email, password))
}
