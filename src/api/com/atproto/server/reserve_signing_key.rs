//! `com.atproto.server.reserveSigningKey`: a signing key created ahead of sign-up, so an account
//! moving here can name its future key in the PLC operation before the account exists. Asking
//! again for the same DID returns the same key.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_generated::com::atproto::server::reserve_signing_key::{Input, Output};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::reserved_key;

/// Reserved keys are sealed under this associated data, since their account may not exist yet.
const SEAL_CONTEXT: &str = "reserved";

pub async fn reserve(ctx: &AppContext, input: Input) -> XrpcResult<Output> {
    let did = input.did.map(|d| d.as_str().to_owned());
    if let Some(did) = &did {
        let existing = reserved_key::Entity::find()
            .filter(reserved_key::Column::Did.eq(did.as_str()))
            .one(&ctx.db)
            .await
            .map_err(internal)?;
        if let Some(row) = existing {
            return Ok(Output { signing_key: row.key_did, extra: Default::default() });
        }
    }
    let key = Keypair::generate(KeyType::K256);
    reserved_key::Entity::insert(reserved_key::ActiveModel {
        key_did: Set(key.did_key()),
        did: Set(did),
        sealed: Set(ctx.keys.seal(SEAL_CONTEXT, &key)),
        created_at: Set(crate::account::now()),
    })
    .exec_without_returning(&ctx.db)
    .await
    .map_err(internal)?;
    Ok(Output { signing_key: key.did_key(), extra: Default::default() })
}

/// The key reserved for `did`, removed from the reservations (it becomes the account's key).
pub async fn take_for(ctx: &AppContext, did: &str) -> XrpcResult<Option<Keypair>> {
    let Some(row) =
        reserved_key::Entity::find().filter(reserved_key::Column::Did.eq(did)).one(&ctx.db).await.map_err(internal)?
    else {
        return Ok(None);
    };
    let key = ctx.keys.unseal(SEAL_CONTEXT, "k256", &row.sealed).map_err(internal)?;
    reserved_key::Entity::delete_by_id(row.key_did).exec(&ctx.db).await.map_err(internal)?;
    Ok(Some(key))
}
