//! The dashboard's pages: overview, accounts, one account, invite codes, audit log.

use std::collections::HashMap;

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Path, Query};
use poem::{handler, Request, Response};

use aurora_atproto::syntax::Did;
use aurora_generated::com::atproto::admin::{get_invite_codes, Service as _};
use aurora_xrpc::auth::Role;
use aurora_xrpc::RequestContext;

use super::session::Session;
use super::{internal, page, signed_in, size, who, Ctx};
use crate::admin::{accounts, audit, overview};
use crate::api::Api;
use crate::context::AppContext;

/// What a finished action says, by the key its redirect carries.
fn done_message(key: &str) -> Option<&'static str> {
    Some(match key {
        "signed-in" => "Signed in.",
        "takedown" => "The account is taken down: its sessions ended and relays were told.",
        "suspended" => "The account is suspended until the time shown.",
        "untakedown" => "The takedown was reversed: the account is active again.",
        "invites-disabled" => "The account can no longer make invite codes.",
        "invites-enabled" => "The account can make invite codes again.",
        "handle" => "The handle was changed.",
        "email" => "The email address was changed; it is unconfirmed until its owner confirms it.",
        "deleted" => "The account was deleted.",
        "invite-disabled" => "The invite code was disabled.",
        "job-ran" => "The job ran; its outcome is in the table below.",
        _ => return None,
    })
}

/// A link to `path` with the non-empty `pairs` as its query, each encoded.
fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(_, value)| !value.is_empty()) {
        query.append_pair(name, value);
    }
    format!("{path}?{}", query.finish())
}

fn notice(query: &HashMap<String, String>) -> Option<String> {
    query.get("done").and_then(|k| done_message(k)).map(str::to_owned)
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage<'a> {
    hostname: &'a str,
    who: Option<String>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    counts: accounts::Counts,
    totals: overview::Totals,
    blob_size: String,
    disk_free: String,
    consumers: usize,
    relays: Vec<(String, String, String)>,
    jobs: Vec<JobRow>,
    is_admin: bool,
}

/// A background job's line on the overview.
pub struct JobRow {
    name: String,
    description: String,
    last: String,
    outcome: String,
    failed: bool,
    next: String,
    runs: String,
}

impl JobRow {
    fn from_view(job: aurora_generated::org::auroralocus::admin::list_jobs::Job) -> Self {
        let last = match (&job.running_on, &job.last_finished_at) {
            (Some(server), _) => format!("running on {server}"),
            (None, Some(at)) => format!("{} ({} ms)", at.as_str(), job.last_duration_ms.unwrap_or_default()),
            (None, None) => "never".to_owned(),
        };
        JobRow {
            name: job.name,
            description: job.description,
            last,
            outcome: job.last_outcome.unwrap_or_default(),
            failed: job.last_ok == Some(false),
            next: job.next_run_at.as_str().to_owned(),
            runs: format!("{} ({} failed)", job.runs, job.failures),
        }
    }
}

/// `GET /admin`.
#[handler]
pub async fn overview_page(ctx: Ctx<'_>, request: &Request, Query(query): Query<HashMap<String, String>>) -> Response {
    let session = match signed_in(&ctx, request) {
        Ok(session) => session,
        Err(sign_in) => return *sign_in,
    };
    overview(&ctx, &session, notice(&query), None).await
}

/// The overview, with what just happened or went wrong.
pub async fn overview(ctx: &AppContext, session: &Session, notice: Option<String>, error: Option<String>) -> Response {
    let (counts, totals, reports) = match tokio::try_join!(
        accounts::counts(&ctx.db),
        overview::totals(&ctx.db),
        crate::crawl::reports(&ctx.db, &ctx.config.crawlers),
    ) {
        Ok(found) => found,
        Err(e) => return internal(e),
    };
    let jobs = match crate::api::org::auroralocus::admin::list_jobs::all(ctx).await {
        Ok(jobs) => jobs,
        Err(e) => return internal(e),
    };
    let relays = reports
        .into_iter()
        .map(|(relay, report)| match report {
            Some(r) => {
                let status = r.status.map_or("no answer".to_owned(), |s| format!("HTTP {s}"));
                (relay, format!("{status} {}", r.answer.trim()), r.at)
            }
            None => (relay, "never asked yet".to_owned(), "-".to_owned()),
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let template = OverviewPage {
        hostname: &ctx.config.hostname,
        who: who(session),
        csrf: session.csrf(ctx),
        notice,
        error,
        counts,
        blob_size: size(totals.blob_bytes),
        totals,
        disk_free: ctx.storage.free_space().map_or_else(|| "unknown".to_owned(), size),
        consumers: ctx.firehose.subscriber_count(),
        relays,
        jobs: jobs.into_iter().map(JobRow::from_view).collect(),
        is_admin: session.admin.role == Role::Admin,
    };
    page(&template, status)
}

pub struct AccountRow {
    did: String,
    handle: String,
    email: String,
    status: String,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage<'a> {
    hostname: &'a str,
    who: Option<String>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    query: String,
    taken_down_only: bool,
    rows: Vec<AccountRow>,
    next: Option<String>,
}

const PAGE: u64 = 50;

/// `GET /admin/accounts?q=…&status=takendown&after=…`.
#[handler]
pub async fn accounts_page(ctx: Ctx<'_>, request: &Request, Query(query): Query<HashMap<String, String>>) -> Response {
    let session = match signed_in(&ctx, request) {
        Ok(session) => session,
        Err(sign_in) => return *sign_in,
    };
    let text = query.get("q").map(|q| q.trim().to_owned()).unwrap_or_default();
    let taken_down_only = query.get("status").is_some_and(|s| s == "takendown");
    let search = accounts::Search {
        text: Some(text.as_str()).filter(|t| !t.is_empty()),
        taken_down_only,
        after: query.get("after").map(String::as_str),
        limit: PAGE,
        ..Default::default()
    };
    let found = match accounts::search(&ctx.db, search).await {
        Ok(found) => found,
        Err(e) => return internal(e),
    };
    let next =
        (found.len() as u64 == PAGE).then(|| found.last().map(|i| i.actor.did.to_string())).flatten().map(|after| {
            let status = if taken_down_only { "takendown" } else { "" };
            link("/admin/accounts", &[("q", &text), ("after", &after), ("status", status)])
        });
    let rows = found
        .into_iter()
        .map(|info| AccountRow {
            did: info.actor.did.to_string(),
            handle: info.actor.handle.as_ref().map_or_else(|| "handle.invalid".to_owned(), ToString::to_string),
            email: info.account.as_ref().and_then(|a| a.email.clone()).unwrap_or_else(|| "-".to_owned()),
            status: status_word(&info.actor).to_owned(),
            created: info.actor.created_at.clone(),
        })
        .collect();
    let template = AccountsPage {
        hostname: &ctx.config.hostname,
        who: who(&session),
        csrf: session.csrf(&ctx),
        notice: notice(&query),
        error: None,
        query: text,
        taken_down_only,
        rows,
        next,
    };
    page(&template, StatusCode::OK)
}

fn status_word(actor: &crate::db::entities::actor::Model) -> &'static str {
    crate::account::actor_status(actor).as_str().unwrap_or("active")
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage<'a> {
    hostname: &'a str,
    who: Option<String>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    title: &'a str,
    back: &'a str,
}

#[derive(Template)]
#[template(path = "admin/account.html")]
pub(super) struct AccountPage<'a> {
    hostname: &'a str,
    who: Option<String>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    did: String,
    handle: String,
    status: String,
    status_class: String,
    email: String,
    email_confirmed: bool,
    created: String,
    invited_by: String,
    invites_disabled: bool,
    invite_codes: Vec<(String, String, String)>,
    takedown_ref: Option<String>,
    takedown_until: Option<String>,
    taken_down: bool,
    footprint: overview::Footprint,
    repo_size: String,
    blob_size: String,
    events: Vec<(i64, String, String)>,
    is_admin: bool,
}

/// `GET /admin/accounts/:did`.
#[handler]
pub async fn account_detail(
    ctx: Ctx<'_>,
    request: &Request,
    Path(did): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match signed_in(&ctx, request) {
        Ok(session) => session,
        Err(sign_in) => return *sign_in,
    };
    account_page(&ctx, &session, &did, notice(&query), None).await
}

/// One account's page, with a notice or error from what was just done.
pub(super) async fn account_page(
    ctx: &crate::context::AppContext,
    session: &super::session::Session,
    did: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let not_found = || {
        let template = MessagePage {
            hostname: &ctx.config.hostname,
            who: who(session),
            csrf: session.csrf(ctx),
            notice: None,
            error: Some(format!("There is no account {did} here (or it was deleted).")),
            title: "No such account",
            back: "/admin/accounts",
        };
        page(&template, StatusCode::NOT_FOUND)
    };
    let Ok(did) = did.parse::<Did>() else { return not_found() };
    let info = match accounts::infos(&ctx.db, std::slice::from_ref(&did)).await {
        Ok(mut found) if !found.is_empty() => found.remove(0),
        Ok(_) => return not_found(),
        Err(e) => return internal(e),
    };
    let (footprint, events) =
        match tokio::try_join!(overview::footprint(&ctx.db, &did), overview::recent_events(&ctx.db, &did, 10)) {
            Ok(found) => found,
            Err(e) => return internal(e),
        };
    let status = status_word(&info.actor);
    let account = info.account.as_ref();
    let template = AccountPage {
        hostname: &ctx.config.hostname,
        who: who(session),
        csrf: session.csrf(ctx),
        notice,
        error,
        did: did.to_string(),
        handle: info.actor.handle.as_ref().map_or_else(|| "handle.invalid".to_owned(), ToString::to_string),
        status: status.to_owned(),
        status_class: status.to_owned(),
        email: account.and_then(|a| a.email.clone()).unwrap_or_else(|| "-".to_owned()),
        email_confirmed: account.is_some_and(|a| a.email_confirmed_at.is_some()),
        created: info.actor.created_at.clone(),
        invited_by: info.invited_by.as_ref().map_or_else(|| "-".to_owned(), |(code, _)| code.code.clone()),
        invites_disabled: account.is_some_and(|a| a.invites_disabled),
        invite_codes: info
            .invites
            .iter()
            .map(|(code, uses)| {
                let state = if code.disabled { "disabled" } else { "enabled" };
                (code.code.clone(), format!("{}/{}", uses.len(), code.available_uses), state.to_owned())
            })
            .collect(),
        takedown_ref: info.actor.takedown_ref.clone(),
        takedown_until: info.actor.takedown_until.clone(),
        taken_down: info.actor.takedown_ref.is_some(),
        repo_size: size(footprint.repo_bytes),
        blob_size: size(footprint.blob_bytes),
        footprint,
        events,
        is_admin: session.admin.role == Role::Admin,
    };
    page(&template, StatusCode::OK)
}

pub struct InviteRow {
    code: String,
    used: String,
    for_account: String,
    created: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "admin/invites.html")]
pub(super) struct InvitesPage<'a> {
    hostname: &'a str,
    who: Option<String>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    is_admin: bool,
    created: Vec<String>,
    rows: Vec<InviteRow>,
    next: Option<String>,
}

/// `GET /admin/invites?cursor=…`.
#[handler]
pub async fn invites_list(ctx: Ctx<'_>, request: &Request, Query(query): Query<HashMap<String, String>>) -> Response {
    let session = match signed_in(&ctx, request) {
        Ok(session) => session,
        Err(sign_in) => return *sign_in,
    };
    invites_page(&ctx, &session, query.get("cursor").cloned(), (notice(&query), None), Vec::new()).await
}

pub(super) async fn invites_page(
    ctx: &std::sync::Arc<crate::context::AppContext>,
    session: &super::session::Session,
    cursor: Option<String>,
    (notice, error): (Option<String>, Option<String>),
    created: Vec<String>,
) -> Response {
    let api = Api::new(ctx.clone());
    let params = get_invite_codes::Params { cursor, limit: 100, sort: None };
    let request = RequestContext::new(get_invite_codes::NSID, Default::default(), None);
    let (rows, next, listing_error) = match api.get_invite_codes(request, session.admin.clone(), params).await {
        Ok(answer) => {
            let next = answer.cursor.map(|c| link("/admin/invites", &[("cursor", &c)]));
            let rows = answer
                .codes
                .into_iter()
                .map(|c| InviteRow {
                    used: format!("{}/{}", c.uses.len(), c.available),
                    code: c.code,
                    for_account: c.for_account,
                    created: c.created_at.as_str().to_owned(),
                    disabled: c.disabled,
                })
                .collect();
            (rows, next, None)
        }
        Err(e) => (Vec::new(), None, Some(e.message.unwrap_or_else(|| e.error.to_string()))),
    };
    let error = error.or(listing_error);
    let template = InvitesPage {
        hostname: &ctx.config.hostname,
        who: who(session),
        csrf: session.csrf(ctx),
        notice,
        error,
        is_admin: session.admin.role == Role::Admin,
        created,
        rows,
        next,
    };
    page(&template, StatusCode::OK)
}

pub struct AuditRow {
    at: String,
    operator: String,
    action: String,
    subject: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    hostname: &'a str,
    who: Option<String>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    subject: String,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

/// `GET /admin/audit?subject=…&before=…`.
#[handler]
pub async fn audit_page(ctx: Ctx<'_>, request: &Request, Query(query): Query<HashMap<String, String>>) -> Response {
    let session = match signed_in(&ctx, request) {
        Ok(session) => session,
        Err(sign_in) => return *sign_in,
    };
    let subject = query.get("subject").map(|s| s.trim().to_owned()).unwrap_or_default();
    let before = query.get("before").and_then(|b| b.parse().ok());
    let rows = match audit::list(&ctx.db, Some(subject.as_str()).filter(|s| !s.is_empty()), before, PAGE).await {
        Ok(rows) => rows,
        Err(e) => return internal(e),
    };
    let next = (rows.len() as u64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten()
        .map(|id| link("/admin/audit", &[("subject", &subject), ("before", &id.to_string())]));
    let rows = rows
        .into_iter()
        .map(|r| AuditRow {
            at: r.at,
            operator: r.operator,
            action: r.action,
            subject: r.subject.unwrap_or_else(|| "-".to_owned()),
            detail: r.detail.unwrap_or_else(|| "-".to_owned()),
        })
        .collect();
    let template = AuditPage {
        hostname: &ctx.config.hostname,
        who: who(&session),
        csrf: session.csrf(&ctx),
        notice: notice(&query),
        error: None,
        subject,
        rows,
        next,
    };
    page(&template, StatusCode::OK)
}
