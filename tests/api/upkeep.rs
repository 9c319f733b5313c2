//! What outsiders can make the server store is bounded: cached DID documents expire and are
//! capped, and signing keys reserved but never claimed are removed.

use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};
use serde_json::json;

use aurora_locus::db::entities::{did_cache, reserved_key};

app_test!(the_did_document_cache_expires_and_is_capped, |app| {
    let now = aurora_locus::auth::now_secs();
    let rows: Vec<did_cache::ActiveModel> = (0..10)
        .map(|n| did_cache::ActiveModel {
            did: Set(format!("did:plc:cached{n:019}").parse().expect("did")),
            doc: Set("{}".into()),
            // Two from two days ago; the rest a minute apart, newest last.
            updated_at: Set(if n < 2 { now - 2 * 86_400 } else { now - 600 + n * 60 }),
        })
        .collect();
    did_cache::Entity::insert_many(rows).exec(&app.ctx.db).await.expect("insert");
    let removed = app.ctx.resolver.sweep_cache(5).await.expect("sweep");
    assert_eq!(removed, 5, "two expired, then three past the cap");
    let left: Vec<String> = did_cache::Entity::find()
        .all(&app.ctx.db)
        .await
        .expect("rows")
        .into_iter()
        .map(|r| r.did.as_str().to_owned())
        .collect();
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|d| d.as_str() >= "did:plc:cached0000000000000000005"), "the newest stay: {left:?}");
});

app_test!(unclaimed_key_reservations_are_removed, |app| {
    let (status, fresh) = app
        .post_json("/xrpc/com.atproto.server.reserveSigningKey", &json!({ "did": "did:plc:reservedfresh000000000000" }))
        .await;
    assert_eq!(status, 200, "{fresh}");
    let old =
        aurora_atproto::syntax::Datetime::from_unix_micros((aurora_locus::auth::now_secs() - 3 * 86_400) * 1_000_000);
    reserved_key::Entity::insert(reserved_key::ActiveModel {
        key_did: Set("did:key:zQ3shOldReservation".parse().expect("did")),
        did: Set(None),
        sealed: Set(vec![0; 8]),
        created_at: Set(old.as_str().to_owned()),
    })
    .exec_without_returning(&app.ctx.db)
    .await
    .expect("insert");
    assert_eq!(reserved_key::Entity::find().count(&app.ctx.db).await.expect("count"), 2);
    assert_eq!(aurora_locus::keys::sweep_reservations(&app.ctx.db).await.expect("sweep"), 1);
    let left = reserved_key::Entity::find().all(&app.ctx.db).await.expect("rows");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key_did.as_str(), fresh["signingKey"].as_str().expect("key"));
});
