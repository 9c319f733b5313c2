//! Lexicons resolved from the network (permission sets, resolveLexicon), with when that last
//! worked.

use sea_orm::entity::prelude::*;

use aurora_atproto::syntax::Nsid;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lexicon_cache")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub nsid: Nsid,
    /// The lexicon document (JSON); none when it never resolved.
    pub lexicon: Option<String>,
    pub uri: Option<String>,
    /// The CID of the schema record.
    pub cid: Option<String>,
    pub updated_at: i64,
    pub last_succeeded_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
