use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    /// `audit_` + 16 lowercase hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The user's org, or `system` when unknown.
    pub org_id: String,
    pub user_id: Option<String>,
    pub action: String,
    pub resource: String,
    pub details: Option<Json>,
    /// Naive UTC.
    pub ts: Option<DateTime>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
