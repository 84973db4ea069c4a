//! SeaORM entities for the API's 8 tables, and the `role` / `plantype` enums.
//! They mirror `ecomind-api-schema.sql` (revision 002).

pub mod alembic_version;
pub mod audit_logs;
pub mod daily_model_agg;
pub mod daily_org_agg;
pub mod daily_provider_agg;
pub mod daily_user_agg;
pub mod events_enriched;
pub mod orgs;
pub mod sea_orm_active_enums;
pub mod users;

pub use sea_orm_active_enums::{PlanType, Role};
