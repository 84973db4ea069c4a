//! Alembic's bookkeeping table, as the API's Alembic makes it: one row, the revision
//! the schema is at. Not an API table (not in the snapshots); read and written by
//! `migrations::bookkeeping`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alembic_version")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub version_num: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
