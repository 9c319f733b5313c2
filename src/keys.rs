//! Repository signing keys at rest. Each account's private key is sealed with
//! ChaCha20-Poly1305 under a key-encryption key derived from the PDS rotation key, so a copy of
//! the database alone reveals no signing key; the DID is bound in as associated data so a
//! sealed key cannot be moved to another account.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aurora_atproto::crypto::{KeyType, Keypair};
use aurora_atproto::syntax::Did;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
const CONTEXT: &[u8] = b"aurora-locus signing-key seal v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("sealed key is malformed or was sealed under another server secret")]
    Unseal,
    #[error("stored key type {0:?} is unknown")]
    KeyType(String),
    #[error("stored key is invalid: {0}")]
    Invalid(String),
    #[error("{0} has no signing key")]
    Missing(Did),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// Seals and unseals signing keys.
#[derive(Clone)]
pub struct KeyVault {
    cipher: ChaCha20Poly1305,
    /// Keys unsealed for service-auth tokens, by owner, with the sealed bytes they came from.
    unsealed: Arc<Mutex<Unsealed>>,
}

/// Unsealed keys by owner, each with the sealed bytes it came from.
type Unsealed = HashMap<String, (Vec<u8>, Arc<Keypair>)>;

/// Owners whose unsealed keys are kept; past that the cache starts again.
const MAX_UNSEALED: usize = 4096;

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyVault(..)")
    }
}

impl KeyVault {
    /// A vault whose key-encryption key is derived from `secret` (the rotation key's hex).
    pub fn new(secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(CONTEXT);
        hasher.update(secret.as_bytes());
        let kek: [u8; 32] = hasher.finalize().into();
        Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&kek)), unsealed: Arc::default() }
    }

    /// `nonce || ciphertext` of the key's private bytes, bound to `did`.
    /// `owner` (the account's DID, or [`RESERVED_SEAL_CONTEXT`]) is bound in as associated data.
    pub fn seal(&self, owner: &str, key: &Keypair) -> Vec<u8> {
        self.seal_bytes(owner, key.to_private_bytes().as_slice())
    }

    /// `nonce || ciphertext` of any secret, with `owner` bound in as associated data.
    pub fn seal_bytes(&self, owner: &str, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption fails only for inputs beyond ChaCha20-Poly1305's 256 GiB limit.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad: owner.as_bytes() })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The secret [`KeyVault::seal_bytes`] sealed for `owner`.
    pub fn unseal_bytes(&self, owner: &str, sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() <= NONCE_LEN {
            return Err(KeyError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let secret = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() })
            .map_err(|_| KeyError::Unseal)?;
        Ok(zeroize::Zeroizing::new(secret))
    }

    pub fn unseal(&self, owner: &str, key_type: &str, sealed: &[u8]) -> Result<Keypair, KeyError> {
        let key_type = parse_key_type(key_type)?;
        let secret = self.unseal_bytes(owner, sealed)?;
        Keypair::from_private_bytes(key_type, &secret).map_err(|e| KeyError::Invalid(e.to_string()))
    }

    /// [`KeyVault::unseal`], kept for the next call with the same sealed bytes. Unsealing is
    /// cheap; making the key is not (it computes the public key, a scalar multiplication as
    /// costly as the signature). Keyed by the sealed bytes read each time, so a key that
    /// changes is never served stale.
    pub fn unseal_kept(&self, owner: &str, key_type: &str, sealed: &[u8]) -> Result<Arc<Keypair>, KeyError> {
        let kept = |unsealed: &Unsealed| {
            unsealed.get(owner).filter(|(from, _)| from.as_slice() == sealed).map(|(_, key)| key.clone())
        };
        if let Some(key) = kept(&self.unsealed.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(key);
        }
        let key = Arc::new(self.unseal(owner, key_type, sealed)?);
        let mut unsealed = self.unsealed.lock().unwrap_or_else(PoisonError::into_inner);
        if unsealed.len() >= MAX_UNSEALED {
            unsealed.clear();
        }
        unsealed.insert(owner.to_owned(), (sealed.to_vec(), key.clone()));
        Ok(key)
    }
}

/// An account's signing key, unsealed for one use.
pub async fn signing_key(ctx: &crate::context::AppContext, did: &Did) -> Result<Keypair, KeyError> {
    use sea_orm::EntityTrait;
    let row = crate::db::entities::signing_key::Entity::find_by_id(did.to_owned())
        .one(&ctx.db)
        .await?
        .ok_or_else(|| KeyError::Missing(did.clone()))?;
    ctx.keys.unseal(did.as_str(), &row.key_type, &row.sealed)
}

/// An account's signing key for service-auth tokens, minted for every proxied request: its row
/// in one point read (see [`crate::db::point_read`]), its key kept unsealed between requests
/// ([`KeyVault::unseal_kept`]).
pub async fn service_signing_key(ctx: &crate::context::AppContext, did: &Did) -> Result<Arc<Keypair>, KeyError> {
    let reader = ctx.reader.as_deref();
    let on_reader = |row: &rusqlite::Row<'_>| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?));
    let on_pool = |row: &sea_orm::QueryResult| Ok((row.try_get("", "key_type")?, row.try_get("", "sealed")?));
    let row = crate::db::point_read(&ctx.db, reader, key_sql, &[did.as_str()], on_reader, on_pool).await?;
    let (key_type, sealed): (String, Vec<u8>) = row.ok_or_else(|| KeyError::Missing(did.clone()))?;
    ctx.keys.unseal_kept(did.as_str(), &key_type, &sealed)
}

/// An account's signing key row: its type and sealed bytes.
fn key_query(did: &str) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, Query};

    use crate::db::entities::signing_key;
    let mut query = Query::select();
    query
        .column(signing_key::Column::KeyType)
        .column(signing_key::Column::Sealed)
        .from(signing_key::Entity)
        .and_where(Expr::col(signing_key::Column::Did).eq(did));
    query
}

/// [`key_query`]'s SQL for each backend, built once.
fn key_sql(backend: sea_orm::DbBackend) -> &'static str {
    static SQL: crate::db::BuiltSql = crate::db::BuiltSql::new();
    SQL.get(backend, || key_query(""))
}

pub fn key_type_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::K256 => "k256",
        KeyType::P256 => "p256",
    }
}

fn parse_key_type(name: &str) -> Result<KeyType, KeyError> {
    match name {
        "k256" => Ok(KeyType::K256),
        "p256" => Ok(KeyType::P256),
        other => Err(KeyError::KeyType(other.to_owned())),
    }
}

/// Reserved keys (`reserveSigningKey`) are sealed under this associated data, since their
/// account may not exist yet.
pub const RESERVED_SEAL_CONTEXT: &str = "reserved";

/// How long a reserved signing key waits for its account (an account moving here creates
/// itself within minutes of reserving one).
pub const RESERVATION_TTL_SECS: i64 = 48 * 60 * 60;

/// Removes reservations no account claimed within [`RESERVATION_TTL_SECS`]: the method is
/// public, so unclaimed keys must not pile up.
pub async fn sweep_reservations(db: &sea_orm::DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let cutoff = aurora_atproto::syntax::Datetime::from_unix_micros(
        (crate::auth::now_secs() - RESERVATION_TTL_SECS).saturating_mul(1_000_000),
    );
    let removed = crate::db::entities::reserved_key::Entity::delete_many()
        .filter(crate::db::entities::reserved_key::Column::CreatedAt.lt(cutoff.as_str()))
        .exec(db)
        .await?;
    Ok(removed.rows_affected)
}

/// The key reserved for `did`, removed from the reservations (it becomes the account's key).
pub async fn take_reserved(ctx: &crate::context::AppContext, did: &Did) -> Result<Option<Keypair>, KeyError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    use crate::db::entities::reserved_key;
    let Some(row) = reserved_key::Entity::find().filter(reserved_key::Column::Did.eq(did)).one(&ctx.db).await? else {
        return Ok(None);
    };
    let key = ctx.keys.unseal(RESERVED_SEAL_CONTEXT, "k256", &row.sealed)?;
    reserved_key::Entity::delete_by_id(row.key_did).exec(&ctx.db).await?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_unseals_to_the_same_key_for_the_same_account_only() {
        let vault = KeyVault::new("00".repeat(32).as_str());
        let key = Keypair::generate(KeyType::K256);
        let sealed = vault.seal("did:plc:alice", &key);
        assert!(!sealed.windows(32).any(|w| w == key.to_private_bytes().as_slice()), "never stored in the clear");
        let back = vault.unseal("did:plc:alice", "k256", &sealed).expect("unseal");
        assert_eq!(back.did_key(), key.did_key());
        assert!(vault.unseal("did:plc:mallory", "k256", &sealed).is_err());
        assert!(KeyVault::new("11".repeat(32).as_str()).unseal("did:plc:alice", "k256", &sealed).is_err());
    }

    #[test]
    fn the_key_statement_binds_the_did_where_the_built_one_does() {
        crate::db::assert_built_once(key_query("did:plc:abc"), key_sql, &["did:plc:abc"]);
    }

    #[test]
    fn a_kept_key_is_served_only_for_the_sealed_bytes_it_came_from() {
        let vault = KeyVault::new("00".repeat(32).as_str());
        let (first, second) = (Keypair::generate(KeyType::K256), Keypair::generate(KeyType::K256));
        let sealed = vault.seal("did:plc:alice", &first);
        let kept = vault.unseal_kept("did:plc:alice", "k256", &sealed).expect("unseal");
        assert_eq!(kept.did_key(), first.did_key());
        let again = vault.unseal_kept("did:plc:alice", "k256", &sealed).expect("kept");
        assert!(Arc::ptr_eq(&kept, &again), "the same sealed bytes reuse the key");
        // The account's key replaced: the new one, never the kept one.
        let resealed = vault.seal("did:plc:alice", &second);
        let replaced = vault.unseal_kept("did:plc:alice", "k256", &resealed).expect("unseal");
        assert_eq!(replaced.did_key(), second.did_key());
        assert!(vault.unseal_kept("did:plc:mallory", "k256", &resealed).is_err(), "bound to its owner still");
    }
}
