//! Outgoing mail: SMTP when PDS_EMAIL_SMTP_URL is set, otherwise a development outbox that
//! writes every message to `<data dir>/outbox/` (logging where, never the code), so a self-hoster without mail
//! can still finish confirmation and reset flows.

use std::path::PathBuf;

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("PDS_EMAIL_SMTP_URL is not a usable SMTP URL: {0}")]
    Url(String),
    #[error("{0} is not a usable address")]
    Address(String),
    #[error("the mail server refused or failed: {0}")]
    Smtp(String),
    #[error("cannot write the outbox: {0}")]
    Outbox(#[from] std::io::Error),
    #[error("cannot render the message: {0}")]
    Render(#[from] askama::Error),
}

/// What a mail is for; each has its own wording around the one-time code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    ConfirmEmail,
    UpdateEmail,
    ResetPassword,
    DeleteAccount,
    PlcOperation,
    SignIn,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ConfirmEmail => "confirm_email",
            Purpose::UpdateEmail => "update_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::DeleteAccount => "delete_account",
            Purpose::PlcOperation => "plc_operation",
            Purpose::SignIn => "sign_in",
        }
    }

    fn wording(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Purpose::ConfirmEmail => (
                "Email Confirmation",
                "Confirm this email address for your account by entering this code in your app:",
                "If you did not ask for this, you can ignore this message.",
            ),
            Purpose::UpdateEmail => (
                "Email Update Requested",
                "Someone asked to change the email address of your account. To allow it, enter this code:",
                "If this was not you, change your password now.",
            ),
            Purpose::ResetPassword => (
                "Password Reset Requested",
                "Use this code to choose a new password for your account:",
                "If you did not ask for a reset, you can ignore this message; your password stays as it is.",
            ),
            Purpose::DeleteAccount => (
                "Account Deletion Requested",
                "Someone asked to delete your account and all of its data. To confirm, enter this code:",
                "If this was not you, change your password now: nothing has been deleted.",
            ),
            Purpose::PlcOperation => (
                "PLC Update Operation Requested",
                "Someone asked to change your account's identity (for example to move it to another server). To allow it, enter this code:",
                "If this was not you, change your password now: your identity has not changed.",
            ),
            Purpose::SignIn => (
                "Sign-in Code",
                "Your account asks for a code from your email to sign in. Enter this code to finish signing in:",
                "If this was not you, someone knows your password: change it now.",
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextBody<'a> {
    heading: &'a str,
    intro: &'a str,
    outro: &'a str,
    handle: &'a str,
    token: &'a str,
    hostname: &'a str,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlBody<'a> {
    heading: &'a str,
    intro: &'a str,
    outro: &'a str,
    handle: &'a str,
    token: &'a str,
    hostname: &'a str,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    hostname: String,
    /// Sent and failed mail, when the server counts them.
    outcomes: Option<prometheus::IntCounterVec>,
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Mailer, MailError> {
        let transport = match &config.email_smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| MailError::Url(e.to_string()))?
                    .build(),
            ),
            None => Transport::Outbox(config.data_dir.join("outbox")),
        };
        let from = config.email_from_address.clone().unwrap_or_else(|| format!("noreply@{}", config.hostname));
        let from = from.parse().map_err(|_| MailError::Address(from.clone()))?;
        Ok(Mailer { transport, from, hostname: config.hostname.clone(), outcomes: None })
    }

    /// Counts each mail's outcome (`sent` or `failed`) in `outcomes`.
    pub fn counting(mut self, outcomes: prometheus::IntCounterVec) -> Self {
        self.outcomes = Some(outcomes);
        self
    }

    pub fn is_smtp(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// Mails `token` to `to` for `purpose`.
    pub async fn send_token(&self, to: &str, handle: &str, purpose: Purpose, token: &str) -> Result<(), MailError> {
        let (heading, intro, outro) = purpose.wording();
        let hostname = self.hostname.as_str();
        let text = TextBody { heading, intro, outro, handle, token, hostname }.render()?;
        let html = HtmlBody { heading, intro, outro, handle, token, hostname }.render()?;
        self.send(to, heading, text, Some(html)).await.map(|_| ())
    }

    /// Sends a message; returns the server's answer (or where the outbox put it).
    pub async fn send(&self, to: &str, subject: &str, text: String, html: Option<String>) -> Result<String, MailError> {
        let outcome = self.deliver(to, subject, text, html).await;
        if let Some(outcomes) = &self.outcomes {
            outcomes.with_label_values(&[if outcome.is_ok() { "sent" } else { "failed" }]).inc();
        }
        outcome
    }

    async fn deliver(&self, to: &str, subject: &str, text: String, html: Option<String>) -> Result<String, MailError> {
        let to_box: Mailbox = to.parse().map_err(|_| MailError::Address(to.to_owned()))?;
        let builder = Message::builder().from(self.from.clone()).to(to_box).subject(subject);
        let message = match html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text.clone(), html)),
            None => builder.body(text.clone()),
        }
        .map_err(|e| MailError::Smtp(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                let response = smtp.send(message).await.map_err(|e| MailError::Smtp(e.to_string()))?;
                Ok(format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" ")))
            }
            Transport::Outbox(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let name = format!("{}-{}.eml", aurora_atproto::syntax::Tid::now().as_str(), sanitise(to));
                let path = dir.join(name);
                tokio::fs::write(&path, message.formatted()).await?;
                // Codes in mail are secrets: the log says where the mail is, never what it says.
                tracing::info!(to, subject, path = %path.display(), "mail written to the outbox (no SMTP configured)");
                Ok(format!("written to {}", path.display()))
            }
        }
    }
}

/// A file-name-safe form of an address (never used to build a path outside the outbox).
fn sanitise(address: &str) -> String {
    address.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '@' { c } else { '_' }).take(64).collect()
}
