//! The `/admin` dashboard over plain HTTP: sign-in with the operators' passwords into a strict
//! cookie, pages that refuse framing, and forms that take effect only from this server's own
//! page (origin, CSRF token) and only when confirmed. The browser run is `tests/e2e/admin.mjs`.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;

use crate::helpers::TestApp;

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
}

/// The value of the hidden `csrf` field on a page.
fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().expect("value").to_owned()
}

/// `name=value` of a `Set-Cookie` header named `name`.
fn cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let pair = v.split(';').next()?;
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| (format!("{key}={value}"), v.to_owned()))
    })
}

/// Signs in as `user`; the session cookie.
async fn sign_in(app: &TestApp, user: &str, password: &str) -> reqwest::Response {
    let http = client();
    let page = http.get(format!("{}/admin", app.url)).send().await.expect("page");
    let (csrf_cookie, _) = cookie(&page, "aurora-csrf").expect("a CSRF cookie");
    let csrf = csrf_of(&page.text().await.expect("text"));
    http.post(format!("{}/admin/sign-in", app.url))
        .header(COOKIE, csrf_cookie)
        .form(&[("csrf", csrf.as_str()), ("user", user), ("password", password)])
        .send()
        .await
        .expect("sign in")
}

async fn session(app: &TestApp, user: &str, password: &str) -> String {
    let response = sign_in(app, user, password).await;
    assert_eq!(response.status(), 303);
    cookie(&response, "aurora-admin").expect("a session cookie").0
}

async fn repo_status(app: &TestApp, did: &str) -> Value {
    app.get_json(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}")).await.1
}

app_test!(the_dashboard_signs_in_and_takes_effect_only_from_its_own_confirmed_forms, [
    "PDS_ADMIN_PASSWORD" => "admin-secret",
    "AURORA_MODERATOR_PASSWORD" => "moderator-secret-1234",
], |app| {
    let account = app.create_account("dana").await;
    let did = account["did"].as_str().expect("did");

    let refused = sign_in(&app, "admin", "guess").await;
    assert_eq!(refused.status(), 401);
    assert!(cookie(&refused, "aurora-admin").is_none());
    let response = sign_in(&app, "admin", "admin-secret").await;
    assert_eq!(response.headers()[LOCATION], "/admin?done=signed-in");
    let (session, attributes) = cookie(&response, "aurora-admin").expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(attributes.contains(attribute), "{attributes}");
    }

    let http = client();
    let overview = http.get(format!("{}/admin", app.url)).header(COOKIE, &session).send().await.expect("overview");
    let csp = overview.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let text = overview.text().await.expect("text");
    assert!(text.contains("Overview") && text.contains("Active"), "{text}");
    // A forged or altered cookie is no session.
    let forged = session.replace("admin.", "admin.1");
    let page = http.get(format!("{}/admin", app.url)).header(COOKIE, &forged).send().await.expect("page");
    assert!(page.text().await.expect("text").contains("Sign in to administer"));

    let page = http
        .get(format!("{}/admin/accounts/{did}", app.url))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("account page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("dana.test") && page.contains("Delete the account"), "{page}");
    let missing = http
        .get(format!("{}/admin/accounts/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", app.url))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("missing account");
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.expect("text").contains("No such account"));
    let csrf = csrf_of(&page);
    // (The server's public URL is not the address the tests reach it at, so valid posts here send
    // no Origin, as a same-origin form post from an old browser would not.)
    let takedown = |fields: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let http = http.clone();
        let url = format!("{}/admin/accounts/{did}/takedown", app.url);
        let session = session.clone();
        async move {
            let mut request = http.post(url).header(COOKIE, session).form(&fields);
            if let Some(origin) = origin {
                request = request.header(ORIGIN, origin);
            }
            request.send().await.expect("post")
        }
    };
    let wrong_token = takedown(vec![("csrf", "0".repeat(32)), ("confirm", "yes".into())], None).await;
    assert_eq!(wrong_token.status(), 403);
    let elsewhere = takedown(vec![("csrf", csrf.clone()), ("confirm", "yes".into())], Some("https://evil.example")).await;
    assert_eq!(elsewhere.status(), 403);
    let unconfirmed = takedown(vec![("csrf", csrf.clone())], None).await;
    assert_eq!(unconfirmed.status(), 400);
    assert_eq!(repo_status(&app, did).await["active"], true, "nothing happened yet");

    let done = takedown(vec![("csrf", csrf.clone()), ("confirm", "yes".into()), ("ref", "T-9".into())], None).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()[LOCATION].to_str().expect("location"), format!("/admin/accounts/{did}?done=takedown"));
    assert_eq!(repo_status(&app, did).await["status"], "takendown");
    let audit = http
        .get(format!("{}/admin/audit", app.url))
        .header(COOKIE, &session)
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("text");
    assert!(audit.contains("takedown") && audit.contains("T-9"), "{audit}");

    // A moderator's session takes down but is refused the administrator's changes.
    let moderator = session_of_moderator(&app).await;
    let page = http
        .get(format!("{}/admin/accounts/{did}", app.url))
        .header(COOKIE, &moderator)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(!page.contains("Delete the account"), "no administrator forms for a moderator");
    let csrf = csrf_of(&page);
    let refused = http
        .post(format!("{}/admin/accounts/{did}/delete", app.url))
        .header(COOKIE, &moderator)
        .form(&[("csrf", csrf.as_str()), ("confirm_handle", "dana.test")])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.expect("text").contains("Only the administrator"));
    assert_eq!(repo_status(&app, did).await["status"], "takendown", "not deleted");
});

async fn session_of_moderator(app: &TestApp) -> String {
    session(app, "moderator", "moderator-secret-1234").await
}

app_test!(the_overview_shows_the_jobs_and_the_administrator_runs_one_now, [
    "PDS_ADMIN_PASSWORD" => "admin-secret",
    "AURORA_MODERATOR_PASSWORD" => "moderator-secret-1234",
], |app| {
    let http = client();
    let session = session(&app, "admin", "admin-secret").await;
    let page = http.get(format!("{}/admin", app.url)).header(COOKIE, &session).send().await.expect("overview");
    let page = page.text().await.expect("text");
    for job in aurora_locus::jobs::Job::ALL {
        assert!(page.contains(job.name()) && page.contains(&format!("/admin/jobs/{}/run", job.name())), "{}", job.name());
    }
    let run = |session: String, csrf: String| {
        let (http, url) = (http.clone(), format!("{}/admin/jobs/trim-firehose/run", app.url));
        async move { http.post(url).header(COOKIE, session).form(&[("csrf", csrf)]).send().await.expect("run") }
    };
    let csrf = csrf_of(&page);
    assert_eq!(run(session.clone(), "0".repeat(32)).await.status(), 403, "only from the server's own page");
    let done = run(session.clone(), csrf).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()[LOCATION].to_str().expect("location"), "/admin?done=job-ran");
    let row = aurora_locus::jobs::schedule::get(&app.ctx.db, "trim-firehose").await.expect("row").expect("present");
    assert_eq!((row.runs, row.last_ok), (1, Some(true)));
    let page = http.get(format!("{}/admin?done=job-ran", app.url)).header(COOKIE, &session).send().await.expect("page");
    let page = page.text().await.expect("text");
    assert!(page.contains("The job ran") && page.contains("0 trimmed") && page.contains("1 (0 failed)"), "{page}");

    // A moderator sees the schedule but has no button, and a forged post is refused.
    let moderator = session_of_moderator(&app).await;
    let page = http.get(format!("{}/admin", app.url)).header(COOKIE, &moderator).send().await.expect("overview");
    let page = page.text().await.expect("text");
    assert!(page.contains("trim-firehose") && !page.contains("/admin/jobs/trim-firehose/run"));
    let refused = run(moderator, csrf_of(&page)).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.expect("text").contains("Only the administrator may do this."));
    let row = aurora_locus::jobs::schedule::get(&app.ctx.db, "trim-firehose").await.expect("row").expect("present");
    assert_eq!(row.runs, 1);
});
