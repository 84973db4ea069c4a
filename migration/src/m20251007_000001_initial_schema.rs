//! Alembic revision 001: the initial EcoMind schema (8 tables, the `plantype`
//! and `role` enum types, the API's indexes).
//!
//! On PostgreSQL this produces exactly what the API's Alembic revision makes:
//! unbounded `character varying`, `double precision`, `json`, `timestamp
//! without time zone`, PostgreSQL's default constraint names. On SQLite the
//! enums are text columns with a CHECK on the allowed labels.

use sea_orm_migration::prelude::extension::postgres::Type;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20251007_000001_initial_schema"
    }
}

pub const PLAN_LABELS: [&str; 3] = ["free", "pro", "enterprise"];
pub const ROLE_LABELS: [&str; 5] = ["owner", "admin", "analyst", "viewer", "billing"];

#[derive(DeriveIden, Clone, Copy)]
enum PlanType {
    #[sea_orm(iden = "plantype")]
    Type,
}

#[derive(DeriveIden, Clone, Copy)]
enum Role {
    #[sea_orm(iden = "role")]
    Type,
}

#[derive(DeriveIden, Clone, Copy)]
enum Orgs {
    Table,
    Id,
    Name,
    Plan,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    OrgId,
    Email,
    Name,
    Role,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EventsEnriched {
    Table,
    Id,
    OrgId,
    UserId,
    Provider,
    Model,
    TokensIn,
    TokensOut,
    NodeType,
    Region,
    Kwh,
    WaterL,
    Co2Kg,
    Ts,
    Source,
    Metadata,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLogs {
    Table,
    Id,
    OrgId,
    UserId,
    Action,
    Resource,
    Details,
    Ts,
}

#[derive(DeriveIden, Clone, Copy)]
enum DailyOrgAgg {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum DailyUserAgg {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum DailyProviderAgg {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum DailyModelAgg {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Agg {
    Date,
    OrgId,
    UserId,
    Provider,
    Model,
    CallCount,
    Kwh,
    WaterL,
    Co2Kg,
}

/// An enum column: the named PostgreSQL enum type, or text with a CHECK on SQLite.
fn enum_column<C: IntoIden + Clone + 'static>(
    backend: DbBackend,
    column: C,
    type_name: impl IntoIden,
    labels: &[&str],
) -> ColumnDef {
    let mut def = ColumnDef::new(column.clone());
    if backend == DbBackend::Postgres {
        def.custom(type_name);
    } else {
        def.string()
            .check(Expr::col(column).is_in(labels.iter().copied()));
    }
    def
}

fn create_enum(name: impl IntoIden, labels: &[&str]) -> extension::postgres::TypeCreateStatement {
    Type::create()
        .as_enum(name)
        .values(labels.iter().map(|l| Alias::new(*l)))
        .to_owned()
}

/// The four daily aggregate tables share their measure columns; `keys` are
/// the primary-key columns, in order (`date` first, the rest strings).
fn daily_agg(table: impl IntoIden, keys: &[Agg]) -> TableCreateStatement {
    let mut stmt = Table::create();
    stmt.table(table);
    let mut pk = Index::create();
    for &key in keys {
        let mut col = ColumnDef::new(key);
        if matches!(key, Agg::Date) {
            col.date();
        } else {
            col.string();
        }
        stmt.col(col.not_null());
        pk.col(key);
    }
    stmt.col(ColumnDef::new(Agg::CallCount).integer())
        .col(ColumnDef::new(Agg::Kwh).double())
        .col(ColumnDef::new(Agg::WaterL).double())
        .col(ColumnDef::new(Agg::Co2Kg).double())
        .primary_key(&mut pk);
    stmt.to_owned()
}

fn index(
    name: &str,
    table: impl IntoIden + Clone + 'static,
    cols: Vec<DynIden>,
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(c);
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        if backend == DbBackend::Postgres {
            manager
                .create_type(create_enum(PlanType::Type, &PLAN_LABELS))
                .await?;
            manager
                .create_type(create_enum(Role::Type, &ROLE_LABELS))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Orgs::Table)
                    .col(ColumnDef::new(Orgs::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Orgs::Name).string().not_null())
                    .col(enum_column(
                        backend,
                        Orgs::Plan,
                        PlanType::Type,
                        &PLAN_LABELS,
                    ))
                    .col(ColumnDef::new(Orgs::CreatedAt).date_time())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Users::OrgId).string().not_null())
                    .col(
                        ColumnDef::new(Users::Email)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Users::Name).string())
                    .col(enum_column(backend, Users::Role, Role::Type, &ROLE_LABELS))
                    .col(ColumnDef::new(Users::CreatedAt).date_time())
                    .foreign_key(
                        ForeignKey::create()
                            .name("users_org_id_fkey")
                            .from(Users::Table, Users::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventsEnriched::Table)
                    .col(
                        ColumnDef::new(EventsEnriched::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(EventsEnriched::OrgId).string().not_null())
                    .col(ColumnDef::new(EventsEnriched::UserId).string().not_null())
                    .col(ColumnDef::new(EventsEnriched::Provider).string().not_null())
                    .col(ColumnDef::new(EventsEnriched::Model).string())
                    .col(ColumnDef::new(EventsEnriched::TokensIn).integer())
                    .col(ColumnDef::new(EventsEnriched::TokensOut).integer())
                    .col(ColumnDef::new(EventsEnriched::NodeType).string())
                    .col(ColumnDef::new(EventsEnriched::Region).string())
                    .col(ColumnDef::new(EventsEnriched::Kwh).double().not_null())
                    .col(ColumnDef::new(EventsEnriched::WaterL).double().not_null())
                    .col(ColumnDef::new(EventsEnriched::Co2Kg).double().not_null())
                    .col(ColumnDef::new(EventsEnriched::Ts).date_time().not_null())
                    .col(ColumnDef::new(EventsEnriched::Source).string())
                    .col(ColumnDef::new(EventsEnriched::Metadata).json())
                    .col(ColumnDef::new(EventsEnriched::CreatedAt).date_time())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLogs::Table)
                    .col(
                        ColumnDef::new(AuditLogs::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditLogs::OrgId).string().not_null())
                    .col(ColumnDef::new(AuditLogs::UserId).string())
                    .col(ColumnDef::new(AuditLogs::Action).string().not_null())
                    .col(ColumnDef::new(AuditLogs::Resource).string().not_null())
                    .col(ColumnDef::new(AuditLogs::Details).json())
                    .col(ColumnDef::new(AuditLogs::Ts).date_time())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(daily_agg(DailyOrgAgg::Table, &[Agg::Date, Agg::OrgId]))
            .await?;
        manager
            .create_table(daily_agg(
                DailyUserAgg::Table,
                &[Agg::Date, Agg::OrgId, Agg::UserId],
            ))
            .await?;
        manager
            .create_table(daily_agg(
                DailyProviderAgg::Table,
                &[Agg::Date, Agg::OrgId, Agg::Provider],
            ))
            .await?;
        manager
            .create_table(daily_agg(
                DailyModelAgg::Table,
                &[Agg::Date, Agg::OrgId, Agg::Provider, Agg::Model],
            ))
            .await?;

        use EventsEnriched as E;
        for idx in [
            index(
                "ix_events_enriched_org_id",
                E::Table,
                vec![E::OrgId.into_iden()],
            ),
            index(
                "ix_events_enriched_user_id",
                E::Table,
                vec![E::UserId.into_iden()],
            ),
            index("ix_events_enriched_ts", E::Table, vec![E::Ts.into_iden()]),
            index(
                "ix_events_org_ts",
                E::Table,
                vec![E::OrgId.into_iden(), E::Ts.into_iden()],
            ),
            index(
                "ix_events_user_ts",
                E::Table,
                vec![E::UserId.into_iden(), E::Ts.into_iden()],
            ),
            index(
                "ix_audit_logs_org_id",
                AuditLogs::Table,
                vec![AuditLogs::OrgId.into_iden()],
            ),
            index(
                "ix_audit_logs_ts",
                AuditLogs::Table,
                vec![AuditLogs::Ts.into_iden()],
            ),
            index(
                "ix_daily_org_date",
                DailyOrgAgg::Table,
                vec![Agg::Date.into_iden(), Agg::OrgId.into_iden()],
            ),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping a table drops its indexes and constraints; users before orgs
        // because of users_org_id_fkey.
        for table in [
            DailyModelAgg::Table.into_iden(),
            DailyProviderAgg::Table.into_iden(),
            DailyUserAgg::Table.into_iden(),
            DailyOrgAgg::Table.into_iden(),
            AuditLogs::Table.into_iden(),
            EventsEnriched::Table.into_iden(),
            Users::Table.into_iden(),
            Orgs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .drop_type(Type::drop().name(Role::Type).to_owned())
                .await?;
            manager
                .drop_type(Type::drop().name(PlanType::Type).to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
