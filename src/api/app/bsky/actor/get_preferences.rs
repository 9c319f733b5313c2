//! `app.bsky.actor.getPreferences`: the account's app.bsky preferences, with a declared-age
//! preference derived from the birth date when one is set (as the reference PDS adds it).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use aurora_atproto::syntax::Datetime;
use aurora_generated::app::bsky::actor::defs::{DeclaredAgePref, PreferencesItemItem as Preference};
use aurora_generated::app::bsky::actor::get_preferences::Output;
use aurora_xrpc::auth::{Access, Level};
use aurora_xrpc::XrpcResult;

use crate::api::internal;
use crate::context::AppContext;
use crate::db::entities::account_pref;

pub async fn handle(ctx: &AppContext, auth: Access) -> XrpcResult<Output> {
    let rows = account_pref::Entity::find()
        .filter(account_pref::Column::Did.eq(&auth.did))
        .order_by_asc(account_pref::Column::Id)
        .all(&ctx.db)
        .await
        .map_err(internal)?;
    let mut preferences: Vec<Preference> =
        rows.iter().filter_map(|row| serde_json::from_str(&row.value_json).ok()).collect();
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
    fn an_age_counts_whole_years_up_to_the_birthday() {
        let birth: Datetime = "2008-06-15T00:00:00.000Z".parse().expect("date");
        let at = |text: &str| age_on(&birth, &text.parse().expect("date"));
        assert_eq!(at("2026-06-14T23:59:59.000Z"), 17);
        assert_eq!(at("2026-06-15T00:00:00.000Z"), 18);
        assert_eq!(at("2021-06-15T12:00:00.000Z"), 13);
    }
}
