//! `migrate up | down | current | status`.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Ctx;
use crate::commands::LockArgs;
use crate::db::{self, Db};
use crate::error::Outcome;
use crate::error::{Error, Result};
use crate::migrations::{self, Alembic, Direction, PlannedStep, State, Step, known};
use crate::output::{Output, Report, or_dash, plural, shown};
use crate::schema::{self, drops::Drop};
use crate::commands::Done;
use crate::spec::{Fleet, Info, Work};

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations (all, up to --to, or the next -n).
    Up(UpArgs),
    /// Revert applied migrations (destructive: asks, or needs --yes).
    Down(DownArgs),
    /// Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending.
    Current(CurrentArgs),
    /// List every migration with its Alembic revision, applied or pending, and when.
    Status,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply up to and including VERSION (migration name or Alembic revision, e.g. 001).
    #[arg(long, value_name = "VERSION", value_parser = parse_version, conflicts_with = "steps")]
    pub to: Option<usize>,

    /// Apply only the next N pending migrations.
    #[arg(short = 'n', long = "steps", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: Option<u32>,

    /// Print the SQL that would run (DDL and bookkeeping) and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Revert the newest N applied migrations.
    #[arg(short = 'n', long = "steps", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..), conflicts_with_all = ["to", "all"])]
    pub steps: u32,

    /// Revert everything newer than VERSION (which stays applied).
    #[arg(long, value_name = "VERSION", value_parser = parse_version, conflicts_with = "all")]
    pub to: Option<usize>,

    /// Revert every applied migration: drops all the API's tables and enum types.
    #[arg(long)]
    pub all: bool,

    /// Print the SQL that would run and what it would drop; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct CurrentArgs {
    /// Exit 1 when migrations are pending (for pipelines).
    #[arg(long)]
    pub check: bool,
}

fn parse_version(s: &str) -> std::result::Result<usize, String> {
    migrations::resolve_version(s)
}

pub const UP: Info = Info {
    name: "migrate up",
    database: true,
    csv: false,
    fleet: Fleet::Migrate,
    grants: Some(super::MIGRATE_GRANTS),
    fails_when: Some("on a fleet with `--canary`, a canary that fails verify-schema after `migrate up`"),
    schema: Some(crate::contracts::document::<RunReport>),
};
pub const DOWN: Info = Info {
    name: "migrate down",
    database: true,
    csv: false,
    fleet: Fleet::Each,
    grants: Some(super::MIGRATE_GRANTS),
    fails_when: None,
    schema: Some(crate::contracts::document::<RunReport>),
};
pub const CURRENT: Info = Info {
    name: "migrate current",
    database: true,
    csv: false,
    fleet: Fleet::VersionGate,
    grants: None,
    fails_when: Some("pending migrations under `migrate current --check`; on a fleet, a database behind or ahead of this build"),
    schema: Some(crate::contracts::document::<CurrentReport>),
};
pub const STATUS: Info = Info {
    name: "migrate status",
    database: true,
    csv: false,
    fleet: Fleet::VersionGate,
    grants: None,
    fails_when: Some("a database ahead of this build under `migrate status`; on a fleet, one behind or ahead"),
    schema: Some(crate::contracts::document::<StatusReport>),
};

impl super::Spec for MigrateCommand {
    const INFOS: &'static [&'static Info] = &[&UP, &DOWN, &CURRENT, &STATUS];

    fn info(&self) -> &'static Info {
        match self {
            MigrateCommand::Up(_) => &UP,
            MigrateCommand::Down(_) => &DOWN,
            MigrateCommand::Current(_) => &CURRENT,
            MigrateCommand::Status => &STATUS,
        }
    }

    fn work(&self) -> Work {
        match self {
            MigrateCommand::Up(a) if !a.dry_run => Work::Schema,
            MigrateCommand::Down(a) if !a.dry_run => Work::Schema,
            MigrateCommand::Up(_)
            | MigrateCommand::Down(_)
            | MigrateCommand::Current(_)
            | MigrateCommand::Status => Work::ReadOnly,
        }
    }

    fn lock(&mut self) -> Option<&mut LockArgs> {
        match self {
            MigrateCommand::Up(a) => Some(&mut a.lock),
            MigrateCommand::Down(a) => Some(&mut a.lock),
            MigrateCommand::Current(_) | MigrateCommand::Status => None,
        }
    }

    async fn run(&self, ctx: &Ctx) -> Result<Done> {
        run(self, ctx).await
    }
}

async fn run(cmd: &MigrateCommand, ctx: &Ctx) -> Result<Done> {
    let ui = &ctx.ui;
    let open = match cmd {
        MigrateCommand::Up(args) if args.dry_run => db::Open::DryRun,
        MigrateCommand::Up(_) => db::Open::MayCreate,
        MigrateCommand::Down(args) if args.dry_run => db::Open::DryRun,
        MigrateCommand::Down(_) | MigrateCommand::Current(_) | MigrateCommand::Status => {
            db::Open::Existing
        }
    };
    ctx.with_db(open, async |db| match cmd {
        MigrateCommand::Up(args) => up(db, args, ui).await,
        MigrateCommand::Down(args) => down(db, args, ui).await,
        MigrateCommand::Current(args) => current(db, args, ui).await,
        MigrateCommand::Status => status(db, ui).await,
    })
    .await
}

/// A version as reports show it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VersionRef {
    pub version: String,
    pub alembic_revision: &'static str,
}

fn version_ref(index: Option<usize>) -> Option<VersionRef> {
    index.map(|i| {
        let k = &known()[i];
        VersionRef {
            version: k.version.clone(),
            alembic_revision: k.alembic_revision,
        }
    })
}

// ---------------------------------------------------------------- up / down

/// The result of `migrate up` and `migrate down`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RunReport {
    pub database: String,
    pub direction: Direction,
    pub dry_run: bool,
    /// Steps taken (empty on a dry run).
    pub steps: Vec<Step>,
    /// Steps a dry run would take, with their SQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<PlannedStep>>,
    /// What a revert drops (down only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drops: Vec<Drop>,
    /// The version before the run.
    pub from: Option<VersionRef>,
    /// The version after the run (a dry run: the version it would reach).
    pub to: Option<VersionRef>,
    /// alembic_version after the run, when the database has that table.
    pub alembic_version: Option<Alembic>,
}

impl Report for RunReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let verb = match self.direction {
            Direction::Up => "apply",
            Direction::Down => "revert",
        };
        if let Some(plan) = &self.plan {
            if plan.is_empty() {
                let _ = writeln!(out, "-- dry run: nothing to {verb}");
                return;
            }
            let _ = writeln!(
                out,
                "-- dry run on {}: nothing was changed",
                shown(&self.database)
            );
            for d in &self.drops {
                let _ = writeln!(out, "-- drops {}", describe_drop(d));
            }
            for step in plan {
                let _ = writeln!(
                    out,
                    "\n-- {verb} {} (alembic {})",
                    step.version, step.alembic_revision
                );
                for s in &step.sql {
                    let _ = writeln!(out, "{s};");
                }
            }
            return;
        }
        if self.steps.is_empty() {
            let _ = writeln!(
                out,
                "Nothing to {verb}: the database is at {}.",
                self.from
                    .as_ref()
                    .map(|v| format!("{} ({})", v.alembic_revision, v.version))
                    .unwrap_or_else(|| "no version (empty)".into())
            );
            return;
        }
        if !self.drops.is_empty() {
            let _ = writeln!(out, "Dropped:");
            for d in &self.drops {
                let _ = writeln!(out, "  - {}", describe_drop(d));
            }
        }
        let mut t = ui.table(&["migration", "alembic", "action", "time"]);
        for s in &self.steps {
            t.add_row(vec![
                s.version.clone(),
                s.alembic_revision.to_owned(),
                match s.direction {
                    Direction::Up => "applied".to_owned(),
                    Direction::Down => "reverted".to_owned(),
                },
                format!("{} ms", s.duration_ms),
            ]);
        }
        let _ = writeln!(out, "{t}");
        let _ = writeln!(
            out,
            "Database {} is now at {}.",
            shown(&self.database),
            self.to
                .as_ref()
                .map(|v| format!("{} ({})", v.alembic_revision, v.version))
                .unwrap_or_else(|| "no version (everything reverted)".into())
        );
    }
}

async fn up(db: &Db, args: &UpArgs, ui: &Output) -> Result<Done> {
    let state = migrations::snapshot_state(db).await?;
    state.check_writable()?;
    let pending = state.pending();
    let last = known().len() - 1;
    let target = match (args.to, args.steps) {
        (Some(to), _) => to,
        (None, Some(n)) => pending.get(n as usize - 1).copied().unwrap_or(last),
        (None, None) => last,
    };
    let to_apply: Vec<usize> = pending.iter().copied().filter(|i| *i <= target).collect();
    if let Some(to) = args.to
        && state.is_applied(to)
        && to_apply.is_empty()
    {
        ui.note(format!("{} is already applied", known()[to].version));
    }
    let from = version_ref(state.current());
    if args.dry_run {
        let plan = migrations::plan_sql(
            db.backend,
            &state,
            Direction::Up,
            &to_apply,
            args.lock.options(),
        )
        .await?;
        let reach = to_apply.last().copied().or(state.current());
        return emit_run(
            db,
            Direction::Up,
            Vec::new(),
            Some(plan),
            Vec::new(),
            from,
            version_ref(reach),
            &state,
        );
    }
    let steps = if to_apply.is_empty() {
        Vec::new()
    } else {
        db.ensure_writable().await?;
        migrations::run_up(db, target, args.lock.options(), ui).await?
    };
    let after = migrations::snapshot_state(db).await?;
    emit_run(
        db,
        Direction::Up,
        steps,
        None,
        Vec::new(),
        from,
        version_ref(after.current()),
        &after,
    )
}

/// `keep`: the newest migration that stays applied (None: revert everything), and the
/// migrations to revert, newest first.
fn down_target(state: &State, args: &DownArgs) -> Result<(Option<usize>, Vec<usize>)> {
    let mut applied: Vec<usize> = state.applied.iter().map(|(i, _)| *i).collect();
    applied.sort_unstable();
    let keep: Option<usize> = if args.all {
        None
    } else if let Some(to) = args.to {
        if !state.is_applied(to) {
            return Err(Error::refused(
                format!(
                    "{} is not applied, so the database cannot be reverted to it",
                    known()[to].version
                ),
                "see `ecomind-admin migrate status`; use --all to revert everything",
            ));
        }
        Some(to)
    } else {
        let n = args.steps as usize;
        applied.len().checked_sub(n + 1).map(|i| applied[i])
    };
    let to_revert = applied
        .iter()
        .rev()
        .copied()
        .filter(|i| keep.is_none_or(|k| *i > k))
        .collect();
    Ok((keep, to_revert))
}

async fn down(db: &Db, args: &DownArgs, ui: &Output) -> Result<Done> {
    let state = migrations::snapshot_state(db).await?;
    state.check_writable()?;
    let (keep, to_revert) = down_target(&state, args)?;
    let from = version_ref(state.current());
    let reach = version_ref(keep);
    let plan = migrations::plan_sql(
        db.backend,
        &state,
        Direction::Down,
        &to_revert,
        args.lock.options(),
    )
    .await?;
    let mut drops = schema::drops::reverting(db.backend, &to_revert);
    if !drops.is_empty() {
        schema::drops::estimate_rows(db, &mut drops).await?;
    }
    if args.dry_run {
        return emit_run(
            db,
            Direction::Down,
            Vec::new(),
            Some(plan),
            drops,
            from,
            reach,
            &state,
        );
    }
    if to_revert.is_empty() {
        return emit_run(
            db,
            Direction::Down,
            Vec::new(),
            None,
            Vec::new(),
            from.clone(),
            from,
            &state,
        );
    }
    db.ensure_writable().await?;
    confirm_down(db, args, ui, &to_revert, &drops)?;
    let steps = migrations::run_down(db, keep, args.lock.options(), ui).await?;
    let after = migrations::snapshot_state(db).await?;
    emit_run(
        db,
        Direction::Down,
        steps,
        None,
        drops,
        from,
        version_ref(after.current()),
        &after,
    )
}

fn confirm_down(
    db: &Db,
    args: &DownArgs,
    ui: &Output,
    to_revert: &[usize],
    drops: &[Drop],
) -> Result<()> {
    let names: Vec<String> = to_revert
        .iter()
        .map(|i| format!("{} ({})", known()[*i].alembic_revision, known()[*i].version))
        .collect();
    let mut details = String::from("This drops:");
    for d in drops {
        let _ = write!(details, "\n  - {}", describe_drop(d));
    }
    ui.confirm_destructive(
        args.yes,
        &format!("revert {} on {}", names.join(", "), db.url),
        &details,
        "Revert these migrations?",
        true,
    )
}

/// `column users.password_hash (~12 rows)`, `table orgs (~3 rows)`, `type role`.
fn describe_drop(d: &Drop) -> String {
    let what = match (d.kind, &d.table) {
        ("column", Some(t)) => format!("column {t}.{}", d.name),
        (kind, _) => format!("{kind} {}", d.name),
    };
    match d.kind {
        "type" => what,
        _ => match d.estimated_rows {
            Some(n) => format!("{what} (~{})", plural(n, "row", "rows")),
            None => format!("{what} (~- rows)"),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn emit_run(
    db: &Db,
    direction: Direction,
    steps: Vec<Step>,
    plan: Option<Vec<PlannedStep>>,
    drops: Vec<Drop>,
    from: Option<VersionRef>,
    to: Option<VersionRef>,
    state: &State,
) -> Result<Done> {
    // An empty database before: `none`.
    let before = Some(revision(&from).unwrap_or_else(|| "none".to_owned()));
    let after = revision(&to);
    let report = RunReport {
        database: db.url.clone(),
        direction,
        dry_run: plan.is_some(),
        steps,
        plan,
        drops,
        from,
        to,
        alembic_version: (state.alembic != Alembic::Absent).then(|| state.alembic.clone()),
    };
    Ok(Done {
        from: before,
        to: after,
        ..Done::report(report, Outcome::Success)
    })
}

/// A version's Alembic revision, as a fleet shows it.
pub fn revision(v: &Option<VersionRef>) -> Option<String> {
    v.as_ref().map(|v| v.alembic_revision.to_owned())
}

// ---------------------------------------------------------------- current / status

/// The result of `migrate current`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CurrentReport {
    pub database: String,
    /// The newest migration recorded in seaql_migrations.
    pub current: Option<VersionRef>,
    /// alembic_version's state, when the database has that table.
    pub alembic_version: Option<Alembic>,
    /// Does alembic_version agree with seaql_migrations? (null without alembic_version)
    pub alembic_in_step: Option<bool>,
    pub latest: VersionRef,
    pub pending: Vec<VersionRef>,
    /// What the database records that this build does not know (a newer build migrated
    /// it): unknown versions, an unknown Alembic revision.
    pub unknown_applied: Vec<String>,
    /// Nothing pending and nothing unknown.
    pub up_to_date: bool,
}

impl Report for CurrentReport {
    fn render(&self, out: &mut String, _ui: &Output) {
        let _ = writeln!(out, "database:  {}", shown(&self.database));
        let _ = writeln!(
            out,
            "current:   {}",
            self.current
                .as_ref()
                .map(|v| format!("{} ({})", v.alembic_revision, v.version))
                .unwrap_or_else(|| "none (no migration recorded)".into())
        );
        if let Some(a) = &self.alembic_version {
            let text = match a {
                Alembic::Revision(r) => shown(r).into_owned(),
                Alembic::Empty => "table present, no revision".into(),
                Alembic::Absent => "absent".into(),
            };
            let step = match self.alembic_in_step {
                Some(false) => "  (disagrees with seaql_migrations)",
                _ => "",
            };
            let _ = writeln!(out, "alembic:   {text}{step}");
        }
        let _ = writeln!(
            out,
            "latest:    {} ({})",
            self.latest.alembic_revision, self.latest.version
        );
        if !self.unknown_applied.is_empty() {
            let _ = writeln!(
                out,
                "status:    ahead of this build: {} (upgrade ecomind-admin)",
                self.unknown_applied
                    .iter()
                    .map(|u| shown(u).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else if self.up_to_date {
            let _ = writeln!(out, "status:    up to date");
        } else {
            let names: Vec<&str> = self.pending.iter().map(|p| p.version.as_str()).collect();
            let _ = writeln!(
                out,
                "status:    {} pending: {}",
                self.pending.len(),
                names.join(", ")
            );
        }
    }
}

async fn current(db: &Db, args: &CurrentArgs, ui: &Output) -> Result<Done> {
    let state = migrations::snapshot_state(db).await?;
    note_state(&state, ui);
    let pending: Vec<VersionRef> = state
        .pending()
        .into_iter()
        .filter_map(|i| version_ref(Some(i)))
        .collect();
    let unknown_applied = state.newer_than_build();
    let up_to_date = pending.is_empty() && unknown_applied.is_empty();
    let report = CurrentReport {
        database: db.url.clone(),
        current: version_ref(state.current()),
        alembic_in_step: (state.alembic != Alembic::Absent)
            .then(|| state.alembic.revision() == state.expected_alembic()),
        alembic_version: (state.alembic != Alembic::Absent).then(|| state.alembic.clone()),
        latest: version_ref(Some(known().len() - 1)).expect("at least one migration"),
        pending,
        unknown_applied,
        up_to_date,
    };
    let to = revision(&report.current);
    let ahead = !report.unknown_applied.is_empty();
    let outcome = if args.check && !up_to_date {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    };
    Ok(Done {
        to,
        ahead,
        ..Done::report(report, outcome)
    })
}

fn note_state(state: &State, ui: &Output) {
    if !state.unknown.is_empty() {
        ui.warn(format!(
            "seaql_migrations records migrations this build does not know: {}; upgrade ecomind-admin",
            state.unknown.join(", ")
        ));
    }
    if let Some(rev) = state.alembic_unknown() {
        ui.warn(format!("alembic_version is at revision '{rev}', which this build does not know; upgrade ecomind-admin"));
    } else if state.alembic != Alembic::Absent
        && state.alembic.revision() != state.expected_alembic()
    {
        ui.warn("alembic_version and seaql_migrations disagree; see `migrate status`");
    }
}

/// Is a migration applied? (JSON: `applied` or `pending`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Applied {
    Applied,
    Pending,
}

impl Applied {
    fn label(self) -> &'static str {
        match self {
            Applied::Applied => "applied",
            Applied::Pending => "pending",
        }
    }
}

/// One row of `migrate status`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StatusRow {
    pub version: String,
    pub alembic_revision: &'static str,
    pub status: Applied,
    /// ISO-8601 UTC, when applied.
    pub applied_at: Option<String>,
}

/// The result of `migrate status`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StatusReport {
    pub database: String,
    pub migrations: Vec<StatusRow>,
    pub alembic_version: Option<Alembic>,
    /// Versions in seaql_migrations this build does not know (and an unknown Alembic
    /// revision, as `alembic revision REV`).
    pub unknown_applied: Vec<String>,
}

impl Report for StatusReport {
    fn render(&self, out: &mut String, ui: &Output) {
        let mut t = ui.table(&["migration", "alembic", "status", "applied at (UTC)"]);
        for r in &self.migrations {
            t.add_row(vec![
                r.version.clone(),
                r.alembic_revision.to_owned(),
                r.status.label().to_owned(),
                or_dash(r.applied_at.as_deref()),
            ]);
        }
        for u in &self.unknown_applied {
            t.add_row(vec![
                u.clone(),
                "?".into(),
                "applied (unknown to this build)".into(),
                "-".into(),
            ]);
        }
        let _ = writeln!(out, "{t}");
        if let Some(a) = &self.alembic_version {
            let text = match a {
                Alembic::Revision(r) => shown(r).into_owned(),
                Alembic::Empty => "table present, no revision".into(),
                Alembic::Absent => "absent".into(),
            };
            let _ = writeln!(out, "alembic_version: {text}");
        }
    }
}

async fn status(db: &Db, ui: &Output) -> Result<Done> {
    let state = migrations::snapshot_state(db).await?;
    note_state(&state, ui);
    let migrations = known()
        .into_iter()
        .map(|k| {
            let at = state.applied_at(k.index);
            StatusRow {
                status: if at.is_some() {
                    Applied::Applied
                } else {
                    Applied::Pending
                },
                applied_at: at
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                version: k.version,
                alembic_revision: k.alembic_revision,
            }
        })
        .collect();
    let unknown_applied = state.newer_than_build();
    let ahead = !unknown_applied.is_empty();
    let at = revision(&version_ref(state.current()));
    let report = StatusReport {
        database: db.url.clone(),
        migrations,
        alembic_version: (state.alembic != Alembic::Absent).then(|| state.alembic.clone()),
        unknown_applied,
    };
    // A database ahead of this build is something to act on (upgrade ecomind-admin).
    let outcome = if ahead {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    };
    Ok(Done {
        to: at,
        ahead,
        ..Done::report(report, outcome)
    })
}
