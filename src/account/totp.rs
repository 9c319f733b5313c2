//! Two-factor sign-in with an authenticator app (TOTP, RFC 6238): enrolment (a secret shown as
//! a QR code, confirmed by a first code, with ten one-time recovery codes), and the check every
//! password sign-in makes once it is on (Aurora's pages, OAuth, and `createSession`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, Totp};

use aurora_atproto::syntax::Did;

use crate::context::AppContext;
use crate::db::entities::account_totp;

const RECOVERY_CODES: usize = 10;

/// What enrolling shows the person.
pub struct Enrollment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    pub otpauth_url: String,
    /// The `otpauth:` URL as an SVG QR code, as a `data:` URL.
    pub qr_data_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("that code is not valid")]
    WrongCode,
    #[error("no authenticator is being set up")]
    NotPending,
    #[error("the stored secret cannot be read: {0}")]
    Sealed(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn seal_owner(did: &Did) -> String {
    format!("totp:{did}")
}

fn totp(secret: Vec<u8>, account: &str, issuer: &str) -> Result<Totp, TotpError> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(issuer.replace(':', "_")))
        .build()
        .map_err(|e| TotpError::Sealed(e.to_string()))
}

fn hash(code: &str) -> String {
    let normalised: String =
        code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

/// Whether `did` signs in with an authenticator app.
pub async fn is_enabled<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<bool, DbErr> {
    Ok(account_totp::Entity::find_by_id(did.clone()).one(conn).await?.is_some_and(|row| row.enabled_at.is_some()))
}

/// Starts (or restarts) setting up an authenticator: a new secret, not in force until
/// [`confirm`] sees a code made from it.
pub async fn enroll(ctx: &AppContext, did: &Did, account: &str) -> Result<Enrollment, TotpError> {
    use rand::RngCore;
    let mut secret = [0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    let sealed = STANDARD.encode(ctx.keys.seal_bytes(&seal_owner(did), &secret));
    let row = account_totp::ActiveModel {
        did: Set(did.clone()),
        secret_sealed: Set(sealed),
        enabled_at: Set(None),
        last_step: Set(0),
        recovery_codes: Set("[]".to_owned()),
    };
    // An authenticator already in force is replaced only through `disable`.
    if is_enabled(&ctx.db, did).await? {
        return Err(TotpError::NotPending);
    }
    account_totp::Entity::insert(row)
        .on_conflict(
            OnConflict::column(account_totp::Column::Did)
                .update_columns([
                    account_totp::Column::SecretSealed,
                    account_totp::Column::EnabledAt,
                    account_totp::Column::LastStep,
                ])
                .to_owned(),
        )
        .exec_without_returning(&ctx.db)
        .await?;
    let generator = totp(secret.to_vec(), account, &ctx.config.hostname)?;
    let otpauth_url = generator.to_url().map_err(|e| TotpError::Sealed(e.to_string()))?;
    let svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map_err(|e| TotpError::Sealed(e.to_string()))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrollment {
        secret: Secret::from(secret.to_vec()).to_base32(),
        otpauth_url,
        qr_data_url: format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)),
    })
}

/// Puts a pending authenticator in force once `code` shows the app has its secret; the
/// recovery codes, shown this once.
pub async fn confirm(ctx: &AppContext, did: &Did, account: &str, code: &str) -> Result<Vec<String>, TotpError> {
    let row = account_totp::Entity::find_by_id(did.clone()).one(&ctx.db).await?;
    let Some(row) = row.filter(|r| r.enabled_at.is_none()) else { return Err(TotpError::NotPending) };
    let step = code_step(ctx, did, account, &row, code)?.ok_or(TotpError::WrongCode)?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let hashes: Vec<String> = codes.iter().map(|c| hash(c)).collect();
    account_totp::Entity::update_many()
        .col_expr(account_totp::Column::EnabledAt, Expr::value(crate::oauth::now()))
        .col_expr(account_totp::Column::LastStep, Expr::value(step as i64))
        .col_expr(
            account_totp::Column::RecoveryCodes,
            Expr::value(serde_json::to_string(&hashes).map_err(|e| TotpError::Sealed(e.to_string()))?),
        )
        .filter(account_totp::Column::Did.eq(did))
        .exec(&ctx.db)
        .await?;
    Ok(codes)
}

/// Turns the authenticator off.
pub async fn disable<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<(), DbErr> {
    account_totp::Entity::delete_by_id(did.clone()).exec(conn).await?;
    Ok(())
}

/// A recovery code: four groups of four letters and digits.
fn recovery_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// The time step `code` was made for, if it is a current code of the row's secret.
fn code_step(
    ctx: &AppContext,
    did: &Did,
    account: &str,
    row: &account_totp::Model,
    code: &str,
) -> Result<Option<u64>, TotpError> {
    let sealed = STANDARD.decode(&row.secret_sealed).map_err(|e| TotpError::Sealed(e.to_string()))?;
    let secret = ctx.keys.unseal_bytes(&seal_owner(did), &sealed).map_err(|e| TotpError::Sealed(e.to_string()))?;
    let generator = totp(secret.to_vec(), account, &ctx.config.hostname)?;
    let now = u64::try_from(crate::oauth::now()).unwrap_or_default();
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    Ok(generator.check(&digits, now))
}

/// Checks a second-factor code at sign-in: a current authenticator code not used before, or an
/// unused recovery code (used up by this).
pub async fn verify(ctx: &AppContext, did: &Did, account: &str, code: &str) -> Result<(), TotpError> {
    let row = account_totp::Entity::find_by_id(did.clone()).one(&ctx.db).await?;
    let Some(row) = row.filter(|r| r.enabled_at.is_some()) else { return Err(TotpError::NotPending) };
    if let Some(step) = code_step(ctx, did, account, &row, code)? {
        // A code works once: the step must be newer than the last one accepted.
        let used = account_totp::Entity::update_many()
            .col_expr(account_totp::Column::LastStep, Expr::value(step as i64))
            .filter(account_totp::Column::Did.eq(did))
            .filter(account_totp::Column::LastStep.lt(step as i64))
            .exec(&ctx.db)
            .await?;
        return if used.rows_affected == 1 { Ok(()) } else { Err(TotpError::WrongCode) };
    }
    let mut hashes: Vec<String> = serde_json::from_str(&row.recovery_codes).unwrap_or_default();
    let wanted = hash(code);
    let Some(position) = hashes.iter().position(|h| *h == wanted) else { return Err(TotpError::WrongCode) };
    hashes.remove(position);
    let stored = serde_json::to_string(&hashes).map_err(|e| TotpError::Sealed(e.to_string()))?;
    let spent = account_totp::Entity::update_many()
        .col_expr(account_totp::Column::RecoveryCodes, Expr::value(stored))
        .filter(account_totp::Column::Did.eq(did))
        .filter(account_totp::Column::RecoveryCodes.eq(row.recovery_codes.clone()))
        .exec(&ctx.db)
        .await?;
    if spent.rows_affected == 1 {
        Ok(())
    } else {
        Err(TotpError::WrongCode)
    }
}

/// How many recovery codes are left.
pub async fn recovery_codes_left<C: ConnectionTrait>(conn: &C, did: &Did) -> Result<usize, DbErr> {
    let row = account_totp::Entity::find_by_id(did.clone()).one(conn).await?;
    Ok(row.map_or(0, |r| serde_json::from_str::<Vec<String>>(&r.recovery_codes).map_or(0, |v| v.len())))
}

/// The current code of a secret (for tests, which act as the authenticator app).
pub fn current_code(secret_base32: &str, at: u64) -> Option<String> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    let generator = totp_rs::Builder::new().with_secret(secret.as_ref().to_vec()).build().ok()?;
    Some(generator.generate(at).to_string())
}
