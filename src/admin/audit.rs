//! The audit log: who did what to which subject, when, with what particulars. Entries are
//! written in the transaction of the change they describe where there is one, so the log never
//! claims an action that did not happen; they are also logged (never with a secret).

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::Value;

use aurora_xrpc::auth::{Admin, Role};

use crate::db::entities::admin_audit;

/// The operator the server itself acts as (a suspension running out).
pub const SYSTEM: &str = "system";

/// One action to record.
pub struct Entry<'a> {
    pub operator: String,
    pub role: &'static str,
    pub action: &'a str,
    pub subject: Option<String>,
    pub detail: Option<Value>,
}

impl<'a> Entry<'a> {
    /// An action `admin` took.
    pub fn by(admin: &Admin, action: &'a str) -> Self {
        let role = match admin.role {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
        };
        Entry { operator: admin.name(), role, action, subject: None, detail: None }
    }

    /// An action the server took by itself.
    pub fn system(action: &'a str) -> Self {
        Entry { operator: SYSTEM.to_owned(), role: SYSTEM, action, subject: None, detail: None }
    }

    pub fn subject(mut self, subject: impl ToString) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Writes the entry (in the caller's transaction, when it passes one).
    pub async fn write<C: ConnectionTrait>(self, conn: &C) -> Result<(), DbErr> {
        let detail = self.detail.map(|d| d.to_string());
        tracing::info!(
            target: "aurora::audit",
            operator = %self.operator,
            role = self.role,
            action = self.action,
            subject = self.subject.as_deref().unwrap_or("-"),
            detail = detail.as_deref().unwrap_or("-"),
            "admin action"
        );
        admin_audit::Entity::insert(admin_audit::ActiveModel {
            at: Set(crate::account::now()),
            operator: Set(self.operator),
            role: Set(self.role.to_owned()),
            action: Set(self.action.to_owned()),
            subject: Set(self.subject),
            detail: Set(detail),
            ..Default::default()
        })
        .exec_without_returning(conn)
        .await
        .map(|_| ())
    }
}

/// Entries newest first, below the id `before` when given; only those about `subject` when
/// given (an exact DID, AT-URI or `did/cid`; a DID also matches its records' and blobs').
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    subject: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<admin_audit::Model>, DbErr> {
    let mut query = admin_audit::Entity::find().order_by_desc(admin_audit::Column::Id).limit(limit);
    if let Some(before) = before {
        query = query.filter(admin_audit::Column::Id.lt(before));
    }
    if let Some(subject) = subject {
        let condition = sea_orm::Condition::any()
            .add(admin_audit::Column::Subject.eq(subject))
            .add(admin_audit::Column::Subject.starts_with(format!("at://{subject}/")))
            .add(admin_audit::Column::Subject.starts_with(format!("{subject}/")));
        query = query.filter(condition);
    }
    query.all(conn).await
}
