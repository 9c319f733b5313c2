//! `app.bsky.actor.getPreferences`: the account's app.bsky preferences, with a declared-age
//! preference derived from the birth date when one is set (as the reference PDS adds it).

use sea_orm::sea_query::{Expr, Order, Query, SelectStatement};
use sea_orm::DbBackend;

use aurora_atproto::syntax::Datetime;
use aurora_generated::app::bsky::actor::defs::{DeclaredAgePref, PreferencesItemItem as Preference};
use aurora_generated::app::bsky::actor::get_preferences::Output;
use aurora_xrpc::auth::{Access, Level};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::account_pref;
use crate::db::{bounded_read, BuiltSql};

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let reader = ctx.reader.as_deref();
    let on_reader = |row: &rusqlite::Row<'_>| row.get::<_, String>(0);
    let on_pool = |row: &sea_orm::QueryResult| row.try_get::<String>("", "value_json");
    let values = bounded_read(&ctx.db, reader, preferences_sql, &[auth.did.as_str().into()], on_reader, on_pool)
        .await
        .map_err(internal)?;
    let mut preferences: Vec<Preference> = values.iter().filter_map(|value| serde_json::from_str(value).ok()).collect();
    let birth_date = preferences.iter().find_map(|p| match p {
        Preference::PersonalDetailsPref(details) => details.birth_date.clone(),
        _ => None,
    });
    if let Some(birth_date) = birth_date {
        let age = age_on(&birth_date, &Datetime::now());
        preferences.push(Preference::DeclaredAgePref(Box::new(DeclaredAgePref {
            is_over_age13: Some(age >= 13),
            is_over_age16: Some(age >= 16),
            is_over_age18: Some(age >= 18),
            extra: Default::default(),
        })));
    }
    if !auth.meets(Level::Full) {
        preferences.retain(|p| !matches!(p, Preference::PersonalDetailsPref(_)));
    }
    Ok(Output { preferences, extra: Default::default() })
}

/// An account's stored preferences in the order they were put, as JSON (bounded: putPreferences
/// limits how many there are).
fn preferences_query(did: &str) -> SelectStatement {
    let mut query = Query::select();
    query
        .column(account_pref::Column::ValueJson)
        .from(account_pref::Entity)
        .and_where(Expr::col(account_pref::Column::Did).eq(did))
        .order_by(account_pref::Column::Id, Order::Asc);
    query
}

/// [`preferences_query`]'s SQL for each backend, built once.
fn preferences_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltSql = BuiltSql::new();
    SQL.get(backend, || preferences_query(""))
}

/// Whole years from `birth` to `today`, by UTC calendar dates.
fn age_on(birth: &Datetime, today: &Datetime) -> i64 {
    let (birth_year, birth_month, birth_day) = birth.utc_date();
    let (year, month, day) = today.utc_date();
    let before_birthday = (month, day) < (birth_month, birth_day);
    year - birth_year - i64::from(before_birthday)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_statement_binds_the_did_where_the_built_one_does() {
        crate::db::assert_built_once(preferences_query("did:plc:abc"), preferences_sql, &["did:plc:abc"]);
    }

    #[test]
    fn an_age_counts_whole_years_up_to_the_birthday() {
        let birth: Datetime = "2008-06-15T00:00:00.000Z".parse().expect("date");
        let at = |text: &str| age_on(&birth, &text.parse().expect("date"));
        assert_eq!(at("2026-06-14T23:59:59.000Z"), 17);
        assert_eq!(at("2026-06-15T00:00:00.000Z"), 18);
        assert_eq!(at("2021-06-15T12:00:00.000Z"), 13);
    }
}
