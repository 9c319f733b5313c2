//! Read-after-write: the AppView learns of a user's writes only through the firehose, so for
//! a moment it does not know the post the user just made. For the views a user looks at right
//! after writing, records written after the AppView's indexed rev (its `atproto-repo-rev`
//! answer header) are merged into its answer: new posts at the top of the user's timeline and
//! own feed, their profile as they just saved it, their new post's thread.

use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{json, Value};

use aurora_atproto::blockstore::BlockStore;
use aurora_atproto::data;
use aurora_atproto::syntax::{AtUri, CidString, Did, Handle};

use crate::account::{self, Lookup};
use crate::context::AppContext;
use crate::db::entities::record;
use crate::repo::SqlBlockStore;

const POST: &str = "app.bsky.feed.post";
const PROFILE: &str = "app.bsky.actor.profile";
/// Newest local records looked at.
const MAX_POSTS: u64 = 100;

/// The methods whose answers get the caller's newer records merged in.
pub fn applies(nsid: &str) -> bool {
    matches!(
        nsid,
        "app.bsky.actor.getProfile"
            | "app.bsky.actor.getProfiles"
            | "app.bsky.feed.getTimeline"
            | "app.bsky.feed.getAuthorFeed"
            | "app.bsky.feed.getPostThread"
            | "app.bsky.feed.getActorLikes"
            | "app.bsky.feed.getFeed"
    )
}

/// Whether `did` committed after `rev` (the rev the AppView says it has indexed): usually not,
/// and then its answer goes out as it came, streamed, without a look at the records. One point
/// read of the repository's current rev, which no record's rev exceeds.
pub async fn wrote_since(ctx: &AppContext, did: &Did, rev: &str) -> Result<bool, DbErr> {
    let found = crate::repo::hosting::hosting(&ctx.db, ctx.reader.as_deref(), did).await?;
    Ok(found.and_then(|hosting| hosting.root).is_some_and(|root| root.rev.as_str() > rev))
}

struct LocalPost {
    uri: AtUri,
    cid: CidString,
    value: Value,
    indexed_at: String,
}

/// What the caller wrote after the AppView's rev, and who they are.
struct Local {
    did: Did,
    handle: Handle,
    /// The current profile record, when it changed after the rev.
    new_profile: Option<Value>,
    /// The current profile record, changed or not (for author views of new posts).
    profile: Option<Value>,
    /// Posts written after the rev, newest first.
    posts: Vec<LocalPost>,
}

async fn load(ctx: &AppContext, did: &Did, since_rev: Option<&str>) -> Result<Option<Local>, DbErr> {
    let Some(found) = account::find(&ctx.db, Lookup::Did(did)).await? else { return Ok(None) };
    let mut query = record::Entity::find()
        .filter(record::Column::Did.eq(did))
        .filter(record::Column::Collection.is_in([POST, PROFILE]));
    if let Some(rev) = since_rev {
        query = query.filter(record::Column::Rev.gt(rev));
    }
    // Enough for what a person writes between two AppView updates.
    let mut rows = query.order_by_desc(record::Column::Rev).limit(MAX_POSTS).all(&ctx.db).await?;
    let profile_row = record::Entity::find()
        .filter(record::Column::Did.eq(did))
        .filter(record::Column::Collection.eq(PROFILE))
        .filter(record::Column::Rkey.eq("self"))
        .one(&ctx.db)
        .await?;
    if let Some(row) = &profile_row {
        rows.push(row.clone());
    }
    let cids: Vec<cid::Cid> = rows.iter().filter_map(|r| r.cid.to_cid().ok()).collect();
    let blocks = SqlBlockStore::new(&ctx.db, did).get_many(&cids).await.map_err(|e| DbErr::Custom(e.to_string()))?;
    let value_of = |row: &record::Model| -> Option<Value> {
        let bytes = blocks.get(&row.cid.to_cid().ok()?)?;
        data::ipld_to_json(&data::from_dag_cbor(bytes).ok()?).ok()
    };
    let profile = profile_row.as_ref().and_then(value_of);
    let new_profile = match (&profile_row, since_rev) {
        (Some(row), Some(rev)) if row.rev.as_str() > rev => profile.clone(),
        _ => None,
    };
    let posts = rows
        .iter()
        .filter(|r| r.collection.as_str() == POST)
        .filter_map(|r| {
            Some(LocalPost {
                uri: r.uri.clone(),
                cid: r.cid.clone(),
                value: value_of(r)?,
                indexed_at: r.indexed_at.clone(),
            })
        })
        .collect();
    Ok(Some(Local { did: did.clone(), handle: found.handle(), new_profile, profile, posts }))
}

impl Local {
    fn is_me(&self, actor: Option<&str>) -> bool {
        actor.is_some_and(|a| a == self.did.as_str() || a.eq_ignore_ascii_case(self.handle.as_str()))
    }

    fn author(&self) -> Value {
        let mut author = json!({ "did": self.did, "handle": self.handle });
        if let Some(name) = self.profile.as_ref().and_then(|p| p.get("displayName")) {
            author["displayName"] = name.clone();
        }
        author
    }

    fn post_view(&self, post: &LocalPost) -> Value {
        json!({
            "uri": post.uri,
            "cid": post.cid,
            "author": self.author(),
            "record": post.value,
            "indexedAt": post.indexed_at,
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "labels": [],
        })
    }

    /// Brings a profile view of the caller up to the just-saved profile.
    fn patch_profile(&self, view: &mut Value) {
        let Some(profile) = &self.new_profile else { return };
        if view.get("did").and_then(Value::as_str) != Some(self.did.as_str()) {
            return;
        }
        for field in ["displayName", "description"] {
            match profile.get(field) {
                Some(value) => view[field] = value.clone(),
                None => {
                    if let Some(map) = view.as_object_mut() {
                        map.remove(field);
                    }
                }
            }
        }
    }

    /// Patches the caller's author views in a list of feed items.
    fn patch_feed_authors(&self, feed: &mut Value) {
        for item in feed.as_array_mut().into_iter().flatten() {
            if let Some(author) = item.get_mut("post").and_then(|p| p.get_mut("author")) {
                self.patch_profile(author);
            }
        }
    }

    /// Puts the caller's new posts (not already there) at the top of a feed.
    fn prepend_posts(&self, feed: &mut Value) {
        let Some(items) = feed.as_array_mut() else { return };
        let present: Vec<String> = items.iter().filter_map(|i| i["post"]["uri"].as_str().map(str::to_owned)).collect();
        let new: Vec<Value> = self
            .posts
            .iter()
            .filter(|p| !present.iter().any(|uri| uri == p.uri.as_str()))
            .map(|p| json!({ "post": self.post_view(p) }))
            .collect();
        items.splice(0..0, new);
    }
}

fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Merges the caller's records newer than `rev` into a successful answer. `None` when there
/// is nothing to merge (the answer goes out untouched).
pub async fn merge(
    ctx: &AppContext,
    did: &Did,
    nsid: &str,
    query: &[(String, String)],
    rev: &str,
    mut body: Value,
) -> Result<Option<Value>, DbErr> {
    let Some(local) = load(ctx, did, Some(rev)).await? else { return Ok(None) };
    if local.posts.is_empty() && local.new_profile.is_none() {
        return Ok(None);
    }
    match nsid {
        "app.bsky.actor.getProfile" => local.patch_profile(&mut body),
        "app.bsky.actor.getProfiles" => {
            for profile in body["profiles"].as_array_mut().into_iter().flatten() {
                local.patch_profile(profile);
            }
        }
        "app.bsky.feed.getTimeline" => {
            local.patch_feed_authors(&mut body["feed"]);
            local.prepend_posts(&mut body["feed"]);
        }
        "app.bsky.feed.getAuthorFeed" => {
            local.patch_feed_authors(&mut body["feed"]);
            if local.is_me(param(query, "actor")) {
                local.prepend_posts(&mut body["feed"]);
            }
        }
        "app.bsky.feed.getPostThread" => {
            let root = body["thread"]["post"]["uri"].as_str().map(str::to_owned);
            if let Some(root) = root {
                add_replies(&local, &mut body["thread"], &root);
            }
            if let Some(author) = body["thread"].get_mut("post").and_then(|p| p.get_mut("author")) {
                local.patch_profile(author);
            }
        }
        _ => local.patch_feed_authors(&mut body["feed"]),
    }
    Ok(Some(body))
}

fn add_replies(local: &Local, thread: &mut Value, parent: &str) {
    let replies: Vec<Value> = local
        .posts
        .iter()
        .filter(|p| p.value["reply"]["parent"]["uri"].as_str() == Some(parent))
        .map(|p| json!({ "$type": "app.bsky.feed.defs#threadViewPost", "post": local.post_view(p), "replies": [] }))
        .collect();
    if replies.is_empty() {
        return;
    }
    match thread.get_mut("replies").and_then(Value::as_array_mut) {
        Some(existing) => existing.splice(0..0, replies).for_each(drop),
        None => thread["replies"] = Value::Array(replies),
    }
}

/// The thread of the caller's own post the AppView has not indexed yet.
pub async fn local_thread(ctx: &AppContext, did: &Did, uri: &AtUri) -> Result<Option<Value>, DbErr> {
    let own_post = uri.authority() == did.as_str() && uri.collection() == Some(POST);
    if !own_post {
        return Ok(None);
    }
    let Some(local) = load(ctx, did, None).await? else { return Ok(None) };
    let Some(post) = local.posts.iter().find(|p| &p.uri == uri) else { return Ok(None) };
    let mut thread =
        json!({ "$type": "app.bsky.feed.defs#threadViewPost", "post": local.post_view(post), "replies": [] });
    add_replies(&local, &mut thread, uri.as_str());
    Ok(Some(json!({ "thread": thread })))
}
