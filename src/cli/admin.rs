//! `aurora-locus admin …`: what the reference's `pdsadmin` offers, and more, over the admin API
//! of a running server (this machine's by default, any by `--url`), so it works the same
//! against a remote instance. Tables for people, `--json` for scripts.

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use super::table;

#[derive(Parser, Debug)]
#[command(name = "aurora-locus admin", about = "Manage accounts, invites and moderation on a running server")]
pub struct Cli {
    /// The server's URL (default http://127.0.0.1:$PDS_PORT, port 2583 unless set).
    #[arg(long, global = true)]
    url: Option<String>,
    /// Print the server's answers as JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Accounts: list, inspect, create, delete, take down, reset.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Invite codes.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Ask relays to crawl this server (PDS_CRAWLERS unless relays are named).
    RequestCrawl {
        /// Relay URLs, e.g. https://bsky.network.
        relays: Vec<String>,
        /// This server's public host name (default PDS_HOSTNAME).
        #[arg(long)]
        hostname: Option<String>,
    },
    /// The audit log of admin actions, newest first.
    AuditLog {
        /// Only entries about this DID, AT-URI or DID/CID.
        #[arg(long)]
        subject: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// Every account, or those whose handle, DID or email contains --query.
    List {
        #[arg(long, visible_alias = "email")]
        query: Option<String>,
        /// Only accounts taken down or suspended.
        #[arg(long)]
        taken_down: bool,
    },
    /// One account: handle, email, status, invites.
    Info { account: String },
    /// A new account, with a one-use invite code made for it.
    Create {
        email: String,
        handle: String,
        /// Its password (a random one, printed, unless given).
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete an account and all its data, at once.
    Delete {
        account: String,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Take an account down (or suspend it with --until / --hours).
    Takedown(TakedownArgs),
    /// Reverse an account's takedown or suspension.
    Untakedown { account: String },
    /// Set a new password (a random one, printed, unless given); its sessions end.
    ResetPassword {
        account: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Give an account a new handle.
    UpdateHandle { account: String, handle: String },
    /// Give an account a new email address.
    UpdateEmail { account: String, email: String },
}

#[derive(Args, Debug)]
struct TakedownArgs {
    account: String,
    /// The takedown's reference (a ticket number, say).
    #[arg(long = "ref")]
    reference: Option<String>,
    /// Lift it by itself at this time (RFC 3339).
    #[arg(long, conflicts_with = "hours")]
    until: Option<String>,
    /// Lift it by itself after this many hours.
    #[arg(long)]
    hours: Option<u32>,
}

#[derive(Subcommand, Debug)]
enum InviteCommand {
    /// Make invite codes.
    Create {
        /// Uses per code.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Codes per account.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Make them for these accounts (DIDs) rather than the administrator.
        #[arg(long = "for")]
        for_accounts: Vec<String>,
    },
    /// Every invite code.
    List {
        /// recent or usage.
        #[arg(long, default_value = "recent")]
        sort: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Disable codes, or every code of some accounts.
    Disable {
        codes: Vec<String>,
        #[arg(long = "account")]
        accounts: Vec<String>,
    },
}

/// Why a command failed, in words for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Help the operator asked for: printed, and no failure.
    #[error("{0}")]
    Help(String),
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach {url}: {reason} (is the server running? pass --url for another one)")]
    Unreachable { url: String, reason: String },
    #[error(
        "the server refused the admin password (set PDS_ADMIN_PASSWORD, or AURORA_ENV_FILE to the server's env file)"
    )]
    WrongPassword,
    #[error("{nsid}: {status} {error}: {message}")]
    Refused { nsid: String, status: u16, error: String, message: String },
}

/// Runs `aurora-locus admin <args>`; what to print on success.
pub async fn run(args: &[String]) -> Result<String, CliError> {
    let cli = Cli::try_parse_from(std::iter::once("aurora-locus admin".to_owned()).chain(args.iter().cloned()))
        .map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                CliError::Help(e.to_string())
            }
            _ => CliError::Usage(e.to_string()),
        })?;
    let password = std::env::var("PDS_ADMIN_PASSWORD").map_err(|_| {
        CliError::Usage("PDS_ADMIN_PASSWORD is not set (or set AURORA_ENV_FILE to the server's env file)".into())
    })?;
    let url = cli.url.clone().unwrap_or_else(|| {
        let port = std::env::var("PDS_PORT").unwrap_or_else(|_| "2583".into());
        format!("http://127.0.0.1:{port}")
    });
    let client = Client { http: reqwest::Client::new(), url: url.trim_end_matches('/').to_owned(), password };
    let json = cli.json;
    match cli.command {
        Command::Account(command) => account(&client, command, json).await,
        Command::Invite(command) => invite(&client, command, json).await,
        Command::RequestCrawl { relays, hostname } => request_crawl(&client, relays, hostname, json).await,
        Command::AuditLog { subject, limit } => {
            let mut query = vec![("limit", limit.min(100).to_string())];
            query.extend(subject.map(|s| ("subject", s)));
            let answer = client.get("org.auroralocus.admin.listAuditEntries", &query).await?;
            Ok(if json { pretty(&answer) } else { audit_table(&answer) })
        }
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    password: String,
}

impl Client {
    /// An admin method, with the administrator's credentials.
    async fn get(&self, nsid: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        let request = self.http.get(format!("{}/xrpc/{nsid}", self.url)).query(query);
        self.send(nsid, request.basic_auth("admin", Some(&self.password)), true).await
    }

    async fn post(&self, nsid: &str, body: Value) -> Result<Value, CliError> {
        let request = self.http.post(format!("{}/xrpc/{nsid}", self.url)).json(&body);
        self.send(nsid, request.basic_auth("admin", Some(&self.password)), true).await
    }

    /// A public method (sign-up): no credentials.
    async fn public_post(&self, nsid: &str, body: Value) -> Result<Value, CliError> {
        let request = self.http.post(format!("{}/xrpc/{nsid}", self.url)).json(&body);
        self.send(nsid, request, false).await
    }

    async fn send(&self, nsid: &str, request: reqwest::RequestBuilder, as_admin: bool) -> Result<Value, CliError> {
        let response = request
            .send()
            .await
            .map_err(|e| CliError::Unreachable { url: self.url.clone(), reason: root_cause(&e) })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if as_admin && status == 401 && body["error"] == "AuthenticationRequired" {
            return Err(CliError::WrongPassword);
        }
        if !(200..300).contains(&status) {
            let text = |field: &str| body[field].as_str().unwrap_or("").to_owned();
            return Err(CliError::Refused {
                nsid: nsid.to_owned(),
                status,
                error: text("error"),
                message: text("message"),
            });
        }
        Ok(body)
    }

    /// The DID of a DID or of a handle hosted here (taken down or not, which public handle
    /// resolution would not answer).
    async fn did(&self, account: &str) -> Result<String, CliError> {
        if account.starts_with("did:") {
            return Ok(account.to_owned());
        }
        let handle = account.trim_start_matches('@').to_lowercase();
        let query = [("q", handle.clone()), ("limit", "100".to_owned())];
        let answer = self.get("org.auroralocus.admin.searchAccounts", &query).await?;
        answer["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["info"]["handle"].as_str() == Some(handle.as_str()))
            .and_then(|a| a["info"]["did"].as_str().map(str::to_owned))
            .ok_or_else(|| CliError::Usage(format!("no account here has the handle {handle}")))
    }
}

/// The innermost error's words (reqwest wraps "connection refused" a few levels down).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn random_password() -> String {
    crate::account::password::random_base32(24).to_lowercase()
}

async fn account(client: &Client, command: AccountCommand, json: bool) -> Result<String, CliError> {
    match command {
        AccountCommand::List { query, taken_down } => list_accounts(client, query, taken_down, json).await,
        AccountCommand::Info { account } => {
            let did = client.did(&account).await?;
            let info = client.get("com.atproto.admin.getAccountInfo", &[("did", did.clone())]).await?;
            let status = client.get("com.atproto.admin.getSubjectStatus", &[("did", did)]).await?;
            if json {
                return Ok(pretty(&json!({ "account": info, "status": status })));
            }
            let invites = info["invites"].as_array().map(Vec::len).unwrap_or_default();
            let rows = vec![
                vec!["did".to_owned(), text(&info["did"])],
                vec!["handle".to_owned(), text(&info["handle"])],
                vec!["email".to_owned(), text(&info["email"])],
                vec!["email confirmed".to_owned(), text(&info["emailConfirmedAt"])],
                vec!["created".to_owned(), text(&info["indexedAt"])],
                vec!["status".to_owned(), status_words(&status)],
                vec!["invited by".to_owned(), text(&info["invitedBy"]["code"])],
                vec!["invite codes".to_owned(), invites.to_string()],
                vec!["invites disabled".to_owned(), text(&info["invitesDisabled"])],
            ];
            Ok(table::render(&["FIELD", "VALUE"], &rows))
        }
        AccountCommand::Create { email, handle, password } => {
            let invite = client.post("com.atproto.server.createInviteCode", json!({ "useCount": 1 })).await?;
            let password = password.unwrap_or_else(random_password);
            let body = json!({ "email": email, "handle": handle, "password": password, "inviteCode": invite["code"] });
            let created = client.public_post("com.atproto.server.createAccount", body).await?;
            let (did, handle) = (text(&created["did"]), text(&created["handle"]));
            Ok(if json {
                pretty(&json!({ "did": did, "handle": handle, "password": password }))
            } else {
                format!("Account created\n  DID:      {did}\n  handle:   {handle}\n  password: {password}")
            })
        }
        AccountCommand::Delete { account, yes } => {
            if !yes {
                return Err(CliError::Usage(format!(
                    "deleting {account} removes its repository and blobs for good; repeat with --yes to confirm"
                )));
            }
            let did = client.did(&account).await?;
            client.post("com.atproto.admin.deleteAccount", json!({ "did": did })).await?;
            Ok(done(json, "deleted", &did))
        }
        AccountCommand::Takedown(args) => {
            let did = client.did(&args.account).await?;
            let mut takedown = json!({ "applied": true });
            if let Some(reference) = args.reference {
                takedown["ref"] = reference.into();
            }
            let until = match (args.until, args.hours) {
                (Some(until), _) => Some(until),
                (None, Some(hours)) => Some(crate::account::iso_after_secs(i64::from(hours) * 3600)),
                (None, None) => None,
            };
            if let Some(until) = &until {
                takedown["expiresAt"] = until.clone().into();
            }
            let body =
                json!({ "subject": { "$type": "com.atproto.admin.defs#repoRef", "did": did }, "takedown": takedown });
            let answer = client.post("com.atproto.admin.updateSubjectStatus", body).await?;
            Ok(if json {
                pretty(&answer)
            } else if let Some(until) = until {
                format!("suspended {did} until {until}")
            } else {
                format!("took down {did}")
            })
        }
        AccountCommand::Untakedown { account } => {
            let did = client.did(&account).await?;
            let body = json!({ "subject": { "$type": "com.atproto.admin.defs#repoRef", "did": did },
                               "takedown": { "applied": false } });
            let answer = client.post("com.atproto.admin.updateSubjectStatus", body).await?;
            Ok(if json { pretty(&answer) } else { format!("reversed the takedown of {did}") })
        }
        AccountCommand::ResetPassword { account, password } => {
            let did = client.did(&account).await?;
            let password = password.unwrap_or_else(random_password);
            client.post("com.atproto.admin.updateAccountPassword", json!({ "did": did, "password": password })).await?;
            Ok(if json {
                pretty(&json!({ "did": did, "password": password }))
            } else {
                format!("new password for {did}: {password}")
            })
        }
        AccountCommand::UpdateHandle { account, handle } => {
            let did = client.did(&account).await?;
            client.post("com.atproto.admin.updateAccountHandle", json!({ "did": did, "handle": handle })).await?;
            Ok(done(json, "renamed", &did))
        }
        AccountCommand::UpdateEmail { account, email } => {
            let did = client.did(&account).await?;
            client.post("com.atproto.admin.updateAccountEmail", json!({ "account": did, "email": email })).await?;
            Ok(done(json, "updated the email of", &did))
        }
    }
}

fn done(json: bool, what: &str, did: &str) -> String {
    if json {
        pretty(&json!({ "did": did, "ok": true }))
    } else {
        format!("{what} {did}")
    }
}

fn status_words(status: &Value) -> String {
    if status["takedown"]["applied"] == true {
        match status["takedown"]["expiresAt"].as_str() {
            Some(until) => format!("suspended until {until} ({})", text(&status["takedown"]["ref"])),
            None => format!("taken down ({})", text(&status["takedown"]["ref"])),
        }
    } else if status["deactivated"]["applied"] == true {
        "deactivated".to_owned()
    } else {
        "active".to_owned()
    }
}

/// Every account (or those matching `query`), with its status, paged through
/// `org.auroralocus.admin.searchAccounts`.
async fn list_accounts(
    client: &Client,
    query: Option<String>,
    taken_down: bool,
    json: bool,
) -> Result<String, CliError> {
    let mut accounts: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit", "100".to_owned()), ("takendownOnly", taken_down.to_string())];
        params.extend(query.clone().map(|q| ("q", q)));
        params.extend(cursor.clone().map(|c| ("cursor", c)));
        let page = client.get("org.auroralocus.admin.searchAccounts", &params).await?;
        accounts.extend(page["accounts"].as_array().cloned().unwrap_or_default());
        cursor = page["cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    if json {
        return Ok(pretty(&json!({ "accounts": accounts })));
    }
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            let info = &a["info"];
            vec![
                text(&info["handle"]),
                text(&info["email"]),
                text(&info["did"]),
                text(&a["status"]),
                text(&info["indexedAt"]),
            ]
        })
        .collect();
    Ok(table::render(&["HANDLE", "EMAIL", "DID", "STATUS", "CREATED"], &rows))
}

async fn invite(client: &Client, command: InviteCommand, json: bool) -> Result<String, CliError> {
    match command {
        InviteCommand::Create { uses, count, for_accounts } => {
            let mut body = json!({ "useCount": uses, "codeCount": count });
            if !for_accounts.is_empty() {
                body["forAccounts"] = for_accounts.into();
            }
            let answer = client.post("com.atproto.server.createInviteCodes", body).await?;
            if json {
                return Ok(pretty(&answer));
            }
            let codes: Vec<String> = answer["codes"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| a["codes"].as_array().cloned().unwrap_or_default())
                .map(|c| text(&c))
                .collect();
            Ok(codes.join("\n"))
        }
        InviteCommand::List { sort, limit } => {
            let query = [("sort", sort), ("limit", limit.clamp(1, 500).to_string())];
            let answer = client.get("com.atproto.admin.getInviteCodes", &query).await?;
            if json {
                return Ok(pretty(&answer));
            }
            let rows: Vec<Vec<String>> = answer["codes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let used = c["uses"].as_array().map(Vec::len).unwrap_or_default();
                    let state = if c["disabled"] == true { "disabled" } else { "enabled" };
                    vec![
                        text(&c["code"]),
                        format!("{used}/{}", text(&c["available"])),
                        state.to_owned(),
                        text(&c["forAccount"]),
                        text(&c["createdAt"]),
                    ]
                })
                .collect();
            Ok(table::render(&["CODE", "USED", "STATE", "FOR", "CREATED"], &rows))
        }
        InviteCommand::Disable { codes, accounts } => {
            if codes.is_empty() && accounts.is_empty() {
                return Err(CliError::Usage("name the codes to disable, or --account <did>".into()));
            }
            client
                .post("com.atproto.admin.disableInviteCodes", json!({ "codes": codes, "accounts": accounts }))
                .await?;
            Ok(if json {
                pretty(&json!({ "disabled": { "codes": codes, "accounts": accounts } }))
            } else {
                format!("disabled {} code(s) and the codes of {} account(s)", codes.len(), accounts.len())
            })
        }
    }
}

/// Asks each relay to crawl this server, as `pdsadmin request-crawl` does.
async fn request_crawl(
    client: &Client,
    relays: Vec<String>,
    hostname: Option<String>,
    json: bool,
) -> Result<String, CliError> {
    let relays = if relays.is_empty() {
        std::env::var("PDS_CRAWLERS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        relays
    };
    if relays.is_empty() {
        return Err(CliError::Usage("no relays: name them, or set PDS_CRAWLERS".into()));
    }
    let hostname = hostname
        .or_else(|| std::env::var("PDS_HOSTNAME").ok())
        .ok_or_else(|| CliError::Usage("set PDS_HOSTNAME or pass --hostname".into()))?;
    let mut results = Vec::new();
    for relay in relays {
        let url = format!("{}/xrpc/com.atproto.sync.requestCrawl", relay.trim_end_matches('/'));
        let answer = client.http.post(&url).json(&json!({ "hostname": hostname })).send().await;
        let outcome = match answer {
            Ok(response) if response.status().is_success() => "ok".to_owned(),
            Ok(response) => format!("refused: {}", response.status()),
            Err(e) => format!("unreachable: {}", root_cause(&e)),
        };
        results.push((relay, outcome));
    }
    let failed = results.iter().any(|(_, outcome)| outcome != "ok");
    let report = if json {
        pretty(&Value::Array(results.iter().map(|(r, o)| json!({ "relay": r, "outcome": o })).collect()))
    } else {
        table::render(
            &["RELAY", "OUTCOME"],
            &results.iter().map(|(r, o)| vec![r.clone(), o.clone()]).collect::<Vec<_>>(),
        )
    };
    if failed {
        return Err(CliError::Usage(report));
    }
    Ok(report)
}

fn audit_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let detail = if e["detail"].is_null() { "-".to_owned() } else { e["detail"].to_string() };
            vec![text(&e["createdAt"]), text(&e["operator"]), text(&e["action"]), text(&e["subject"]), detail]
        })
        .collect();
    table::render(&["WHEN", "WHO", "ACTION", "SUBJECT", "DETAIL"], &rows)
}
