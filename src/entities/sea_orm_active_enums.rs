use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// `role`: lowercase labels, in the API's order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "role")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[sea_orm(string_value = "owner")]
    Owner,
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "analyst")]
    Analyst,
    #[sea_orm(string_value = "viewer")]
    Viewer,
    #[sea_orm(string_value = "billing")]
    Billing,
}

/// `plantype`: lowercase labels, in the API's order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "plantype")]
#[serde(rename_all = "lowercase")]
pub enum PlanType {
    #[sea_orm(string_value = "free")]
    Free,
    #[sea_orm(string_value = "pro")]
    Pro,
    #[sea_orm(string_value = "enterprise")]
    Enterprise,
}
