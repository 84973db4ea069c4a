
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'ecomind-admin' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'ecomind-admin'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'ecomind-admin' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply, revert and inspect the schema migrations')
            [CompletionResult]::new('baseline', 'baseline', [CompletionResultType]::ParameterValue, 'Adopt an existing database (hand-made or Alembic-managed) after proving which version its schema is; --undo removes the baseline')
            [CompletionResult]::new('create-org', 'create-org', [CompletionResultType]::ParameterValue, 'Create an organization (with an audit_logs row)')
            [CompletionResult]::new('create-admin', 'create-admin', [CompletionResultType]::ParameterValue, 'Create an owner or admin who can log in to the API (with an audit_logs row)')
            [CompletionResult]::new('users', 'users', [CompletionResultType]::ParameterValue, 'The API''s users: list them, change a role, reset a password')
            [CompletionResult]::new('orgs', 'orgs', [CompletionResultType]::ParameterValue, 'The API''s organizations: list them (read-only)')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Security audits (read-only)')
            [CompletionResult]::new('verify-schema', 'verify-schema', [CompletionResultType]::ParameterValue, 'Compare the live schema with the expected schema of its version (exit 1 on drift)')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check everything a deploy needs (exit 1 when something blocks it). Read-only')
            [CompletionResult]::new('verify-deployment', 'verify-deployment', [CompletionResultType]::ParameterValue, 'Check the deployment at the running API, with the database beside it: the API answers, routes refuse requests without a token, the default JWT secret and expired tokens are refused, no owner or admin uses a published password')
            [CompletionResult]::new('upgrade', 'upgrade', [CompletionResultType]::ParameterValue, 'The deployment plan''s database steps in one: pre-flight, plan, backup, migrate, verify-schema, post-deploy audit, report (stops at a failing step, with the command that restores the backup; a rerun continues)')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Back up the database (pg_dump / a SQLite copy) with a manifest of its row counts; `backup verify FILE` proves a backup by a restore into a scratch copy')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Put a backup back: the database''s content replaced by the backup''s in one transaction (no `migrate down` first), after showing who is connected and what it throws away; then checked (destructive: asks, or needs --yes)')
            [CompletionResult]::new('metrics', 'metrics', [CompletionResultType]::ParameterValue, 'The deployment plan''s monitoring metrics from the database, in the Prometheus text exposition format (read-only)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) to stdout')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;migrate' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Apply pending migrations (all, up to --to, or the next -n)')
            [CompletionResult]::new('down', 'down', [CompletionResultType]::ParameterValue, 'Revert applied migrations (destructive: asks, or needs --yes)')
            [CompletionResult]::new('current', 'current', [CompletionResultType]::ParameterValue, 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List every migration with its Alembic revision, applied or pending, and when')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;migrate;up' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Apply up to and including VERSION (migration name or Alembic revision, e.g. 001)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Apply only the next N pending migrations')
            [CompletionResult]::new('--steps', '--steps', [CompletionResultType]::ParameterName, 'Apply only the next N pending migrations')
            [CompletionResult]::new('--ddl-lock-timeout', '--ddl-lock-timeout', [CompletionResultType]::ParameterName, 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the SQL that would run (DDL and bookkeeping) and change nothing')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;migrate;down' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Revert the newest N applied migrations')
            [CompletionResult]::new('--steps', '--steps', [CompletionResultType]::ParameterName, 'Revert the newest N applied migrations')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Revert everything newer than VERSION (which stays applied)')
            [CompletionResult]::new('--ddl-lock-timeout', '--ddl-lock-timeout', [CompletionResultType]::ParameterName, 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Revert every applied migration: drops all the API''s tables and enum types')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the SQL that would run and what it would drop; change nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;migrate;current' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Exit 1 when migrations are pending (for pipelines)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;migrate;status' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;migrate;help' {
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Apply pending migrations (all, up to --to, or the next -n)')
            [CompletionResult]::new('down', 'down', [CompletionResultType]::ParameterValue, 'Revert applied migrations (destructive: asks, or needs --yes)')
            [CompletionResult]::new('current', 'current', [CompletionResultType]::ParameterValue, 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List every migration with its Alembic revision, applied or pending, and when')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;migrate;help;up' {
            break
        }
        'ecomind-admin;migrate;help;down' {
            break
        }
        'ecomind-admin;migrate;help;current' {
            break
        }
        'ecomind-admin;migrate;help;status' {
            break
        }
        'ecomind-admin;migrate;help;help' {
            break
        }
        'ecomind-admin;baseline' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Adopt the database at VERSION (migration name or Alembic revision) instead of the detected one; its schema must still match VERSION')
            [CompletionResult]::new('--ddl-lock-timeout', '--ddl-lock-timeout', [CompletionResultType]::ParameterName, 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (version, tables, warnings, statements) and write nothing at all')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--undo', '--undo', [CompletionResultType]::ParameterName, 'Remove the baseline: drop seaql_migrations. Never touches the API''s tables or alembic_version')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;create-org' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The organization''s name (stored exactly as given; 1 to 255 characters)')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The id (lowercase letters, digits and underscore, 1 to 64 characters). Default: `org_` + 12 random lowercase hex digits')
            [CompletionResult]::new('--plan', '--plan', [CompletionResultType]::ParameterName, 'The plan')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--if-not-exists', '--if-not-exists', [CompletionResultType]::ParameterName, 'When the id exists already: say so, print it, change nothing, exit 0')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;create-admin' {
            [CompletionResult]::new('--org', '--org', [CompletionResultType]::ParameterName, 'The organization the user belongs to (it must exist)')
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'The user''s email (unique among all users, compared ignoring Unicode case and the IDNA spelling of the domain)')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The user''s display name')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'The role')
            [CompletionResult]::new('--bcrypt-cost', '--bcrypt-cost', [CompletionResultType]::ParameterName, 'bcrypt cost factor, 4 to 31 (below 10 only for tests)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine')
            [CompletionResult]::new('--if-not-exists', '--if-not-exists', [CompletionResultType]::ParameterName, 'When a user with that email exists: say so, change nothing (never the password), exit 0')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;users' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users, sorted by org and email (table, JSON or CSV; streamed)')
            [CompletionResult]::new('set-role', 'set-role', [CompletionResultType]::ParameterValue, 'Change a user''s role, with a role_changed audit row (confirmation for owner/admin)')
            [CompletionResult]::new('reset-password', 'reset-password', [CompletionResultType]::ParameterValue, 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;users;list' {
            [CompletionResult]::new('--org', '--org', [CompletionResultType]::ParameterName, 'Only the users of this organization (it must exist)')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Only users with this role (repeatable)')
            [CompletionResult]::new('--email-like', '--email-like', [CompletionResultType]::ParameterName, 'Only emails matching this SQL LIKE pattern, ignoring case (% any, _ one character)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--privileged', '--privileged', [CompletionResultType]::ParameterName, 'Only owners and admins (the same as --role owner --role admin)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;users;set-role' {
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The user''s id (the first column of `users list`), instead of the email')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why (kept in the audit row)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before an elevation to owner or admin (for scripts)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Allow taking the last owner or admin of an org below admin')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the change and the audit row; write nothing')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;users;reset-password' {
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The user''s id (the first column of `users list`), instead of the email')
            [CompletionResult]::new('--bcrypt-cost', '--bcrypt-cost', [CompletionResultType]::ParameterName, 'bcrypt cost factor, 4 to 31 (below 10 only for tests)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why (kept in the audit row)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;users;lock' {
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The user''s id (the first column of `users list`), instead of the email')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why (kept in the audit row)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask (for scripts)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Allow locking the last owner or admin of an org')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;users;unlock' {
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The user''s id (the first column of `users list`), instead of the email')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'The role to give back (default: the one it had when it was locked)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why (kept in the audit row)')
            [CompletionResult]::new('--bcrypt-cost', '--bcrypt-cost', [CompletionResultType]::ParameterName, 'bcrypt cost factor, 4 to 31 (below 10 only for tests)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before giving back owner or admin (for scripts)')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;users;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users, sorted by org and email (table, JSON or CSV; streamed)')
            [CompletionResult]::new('set-role', 'set-role', [CompletionResultType]::ParameterValue, 'Change a user''s role, with a role_changed audit row (confirmation for owner/admin)')
            [CompletionResult]::new('reset-password', 'reset-password', [CompletionResultType]::ParameterValue, 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;users;help;list' {
            break
        }
        'ecomind-admin;users;help;set-role' {
            break
        }
        'ecomind-admin;users;help;reset-password' {
            break
        }
        'ecomind-admin;users;help;lock' {
            break
        }
        'ecomind-admin;users;help;unlock' {
            break
        }
        'ecomind-admin;users;help;help' {
            break
        }
        'ecomind-admin;orgs' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List organizations with their number of users, sorted by id (table, JSON or CSV)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;orgs;list' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;orgs;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List organizations with their number of users, sorted by id (table, JSON or CSV)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;orgs;help;list' {
            break
        }
        'ecomind-admin;orgs;help;help' {
            break
        }
        'ecomind-admin;audit' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('suspicious-accounts', 'suspicious-accounts', [CompletionResultType]::ParameterValue, 'Find accounts that abused the fixed registration hole, and accounts under attack')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;audit;suspicious-accounts' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'The window for event rules: a duration back from now (7d, 24h, 90m) or a timestamp (2026-11-01, 2026-11-01T12:00:00, naive UTC)')
            [CompletionResult]::new('--fixed-at', '--fixed-at', [CompletionResultType]::ParameterName, 'When the registration fix was deployed (naive UTC): enables registered-before-fix')
            [CompletionResult]::new('--org', '--org', [CompletionResultType]::ParameterName, 'Only this organization')
            [CompletionResult]::new('--rule', '--rule', [CompletionResultType]::ParameterName, 'Run only these rules (repeatable). Default: all')
            [CompletionResult]::new('--failed-threshold', '--failed-threshold', [CompletionResultType]::ParameterName, 'Failed logins for one email within 60 seconds that make a brute-force finding')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 when a finding is at or above this severity')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--show-sql', '--show-sql', [CompletionResultType]::ParameterName, 'Print each rule''s SQL instead of running it')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;audit;help' {
            [CompletionResult]::new('suspicious-accounts', 'suspicious-accounts', [CompletionResultType]::ParameterValue, 'Find accounts that abused the fixed registration hole, and accounts under attack')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;audit;help;suspicious-accounts' {
            break
        }
        'ecomind-admin;audit;help;help' {
            break
        }
        'ecomind-admin;verify-schema' {
            [CompletionResult]::new('--against', '--against', [CompletionResultType]::ParameterName, 'Compare against VERSION (migration name or Alembic revision, e.g. 001) or `head`, instead of the version the database records')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count warnings (extra tables, columns, indexes, enum types) as errors')
            [CompletionResult]::new('--show-fix', '--show-fix', [CompletionResultType]::ParameterName, 'Show the SQL that fixes each finding (always present in --format json)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;doctor' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;verify-deployment' {
            [CompletionResult]::new('--api-url', '--api-url', [CompletionResultType]::ParameterName, 'The running API''s base URL (http:// or https://)')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait this long for the API to answer GET /health (like dbmate''s --wait)')
            [CompletionResult]::new('--accept', '--accept', [CompletionResultType]::ParameterName, 'A known, accepted failure, by check name (repeatable): listed as accepted in the report, never dropped; every other check still gates the exit code')
            [CompletionResult]::new('--junit', '--junit', [CompletionResultType]::ParameterName, 'Also write the checks as JUnit XML to FILE (for CI systems)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--no-fixtures', '--no-fixtures', [CompletionResultType]::ParameterName, 'Only the probes that write nothing (no fixtures, so not the plan''s Tests 1 to 5): for a production where the check may not write')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;upgrade' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Upgrade to this version (migration name or Alembic revision); default: the newest')
            [CompletionResult]::new('--backup-dir', '--backup-dir', [CompletionResultType]::ParameterName, 'Where the backup goes (created, mode 0700, when missing)')
            [CompletionResult]::new('--pg-bin-dir', '--pg-bin-dir', [CompletionResultType]::ParameterName, 'The directory of pg_dump and pg_restore (default: PATH, then /usr/lib/postgresql/<N>/bin, newest first)')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 when the post-deploy audit finds something at or above this severity')
            [CompletionResult]::new('--report', '--report', [CompletionResultType]::ParameterName, 'Also write the JSON report to FILE (for the change record): the global `--output FILE`, by its older name')
            [CompletionResult]::new('--ddl-lock-timeout', '--ddl-lock-timeout', [CompletionResultType]::ParameterName, 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--no-backup', '--no-backup', [CompletionResultType]::ParameterName, 'Take no backup. Never implied: without it, no backup means no upgrade')
            [CompletionResult]::new('--no-verify-backup', '--no-verify-backup', [CompletionResultType]::ParameterName, 'Do not prove the backup by a restore into a scratch copy (`backup verify`): for databases too large to restore twice. The plan says so')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--allow-drift', '--allow-drift', [CompletionResultType]::ParameterName, 'Go on when the schema has drifted from its version (the drift is still reported)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;backup' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Where the backup goes (created, mode 0700, when missing)')
            [CompletionResult]::new('--pg-bin-dir', '--pg-bin-dir', [CompletionResultType]::ParameterName, 'The directory of pg_dump and pg_restore (default: PATH, then /usr/lib/postgresql/<N>/bin, newest first)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove a backup by a restore: into a scratch database made and dropped here (or --scratch-url), then verify-schema, the row counts against its manifest, and the audit on the copy (exit 1 unless the copy is faithful)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;backup;verify' {
            [CompletionResult]::new('--scratch-url', '--scratch-url', [CompletionResultType]::ParameterName, 'Restore into this empty PostgreSQL database instead of making one (emptied again afterwards). Refused when it is the source database or not empty. Prefer the ECOMIND_SCRATCH_URL variable to a password on the command line (argv is visible to every user of the machine)')
            [CompletionResult]::new('--pg-bin-dir', '--pg-bin-dir', [CompletionResultType]::ParameterName, 'The directory of pg_restore')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;backup;help' {
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove a backup by a restore: into a scratch database made and dropped here (or --scratch-url), then verify-schema, the row counts against its manifest, and the audit on the copy (exit 1 unless the copy is faithful)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;backup;help;verify' {
            break
        }
        'ecomind-admin;backup;help;help' {
            break
        }
        'ecomind-admin;restore' {
            [CompletionResult]::new('--pg-bin-dir', '--pg-bin-dir', [CompletionResultType]::ParameterName, 'The directory of pg_restore and psql (default: PATH, then /usr/lib/postgresql/<N>/bin, newest first)')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;metrics' {
            [CompletionResult]::new('--token-lifetime', '--token-lifetime', [CompletionResultType]::ParameterName, 'How long a token the API issues stays valid (its ACCESS_TOKEN_EXPIRE_MINUTES): the window of `ecomind_token_holders`')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--by-org', '--by-org', [CompletionResultType]::ParameterName, 'Users by org and role (one series per org and role; off by default to keep the number of series bounded)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the metrics at GET /metrics (Prometheus scrapes it): each scrape reads the database on one reused connection, within --scrape-timeout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;metrics;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'The address to listen on (HOST:PORT; 0.0.0.0:PORT for every interface)')
            [CompletionResult]::new('--scrape-timeout', '--scrape-timeout', [CompletionResultType]::ParameterName, 'The longest a scrape reads (PostgreSQL statement_timeout) and waits for the one before it; then it answers with ecomind_scrape_success 0 (or 503)')
            [CompletionResult]::new('--token-lifetime', '--token-lifetime', [CompletionResultType]::ParameterName, 'How long a token the API issues stays valid (its ACCESS_TOKEN_EXPIRE_MINUTES): the window of `ecomind_token_holders`')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--by-org', '--by-org', [CompletionResultType]::ParameterName, 'Users by org and role (one series per org and role; off by default to keep the number of series bounded)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;metrics;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the metrics at GET /metrics (Prometheus scrapes it): each scrape reads the database on one reused connection, within --scrape-timeout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;metrics;help;serve' {
            break
        }
        'ecomind-admin;metrics;help;help' {
            break
        }
        'ecomind-admin;man' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;completions' {
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'The environment of the config file to use (its database and settings)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Fleet runs: run the first K databases alone, and the rest only if all K succeed')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of the result on stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors on stderr and in tables (NO_COLOR is honoured)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Fleet runs: start no new database after the first failure')
            [CompletionResult]::new('--allow-newer-schema', '--allow-newer-schema', [CompletionResultType]::ParameterName, 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the result and errors: no notes or progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ecomind-admin;help' {
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply, revert and inspect the schema migrations')
            [CompletionResult]::new('baseline', 'baseline', [CompletionResultType]::ParameterValue, 'Adopt an existing database (hand-made or Alembic-managed) after proving which version its schema is; --undo removes the baseline')
            [CompletionResult]::new('create-org', 'create-org', [CompletionResultType]::ParameterValue, 'Create an organization (with an audit_logs row)')
            [CompletionResult]::new('create-admin', 'create-admin', [CompletionResultType]::ParameterValue, 'Create an owner or admin who can log in to the API (with an audit_logs row)')
            [CompletionResult]::new('users', 'users', [CompletionResultType]::ParameterValue, 'The API''s users: list them, change a role, reset a password')
            [CompletionResult]::new('orgs', 'orgs', [CompletionResultType]::ParameterValue, 'The API''s organizations: list them (read-only)')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Security audits (read-only)')
            [CompletionResult]::new('verify-schema', 'verify-schema', [CompletionResultType]::ParameterValue, 'Compare the live schema with the expected schema of its version (exit 1 on drift)')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check everything a deploy needs (exit 1 when something blocks it). Read-only')
            [CompletionResult]::new('verify-deployment', 'verify-deployment', [CompletionResultType]::ParameterValue, 'Check the deployment at the running API, with the database beside it: the API answers, routes refuse requests without a token, the default JWT secret and expired tokens are refused, no owner or admin uses a published password')
            [CompletionResult]::new('upgrade', 'upgrade', [CompletionResultType]::ParameterValue, 'The deployment plan''s database steps in one: pre-flight, plan, backup, migrate, verify-schema, post-deploy audit, report (stops at a failing step, with the command that restores the backup; a rerun continues)')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Back up the database (pg_dump / a SQLite copy) with a manifest of its row counts; `backup verify FILE` proves a backup by a restore into a scratch copy')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Put a backup back: the database''s content replaced by the backup''s in one transaction (no `migrate down` first), after showing who is connected and what it throws away; then checked (destructive: asks, or needs --yes)')
            [CompletionResult]::new('metrics', 'metrics', [CompletionResultType]::ParameterValue, 'The deployment plan''s monitoring metrics from the database, in the Prometheus text exposition format (read-only)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) to stdout')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ecomind-admin;help;migrate' {
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Apply pending migrations (all, up to --to, or the next -n)')
            [CompletionResult]::new('down', 'down', [CompletionResultType]::ParameterValue, 'Revert applied migrations (destructive: asks, or needs --yes)')
            [CompletionResult]::new('current', 'current', [CompletionResultType]::ParameterValue, 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List every migration with its Alembic revision, applied or pending, and when')
            break
        }
        'ecomind-admin;help;migrate;up' {
            break
        }
        'ecomind-admin;help;migrate;down' {
            break
        }
        'ecomind-admin;help;migrate;current' {
            break
        }
        'ecomind-admin;help;migrate;status' {
            break
        }
        'ecomind-admin;help;baseline' {
            break
        }
        'ecomind-admin;help;create-org' {
            break
        }
        'ecomind-admin;help;create-admin' {
            break
        }
        'ecomind-admin;help;users' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users, sorted by org and email (table, JSON or CSV; streamed)')
            [CompletionResult]::new('set-role', 'set-role', [CompletionResultType]::ParameterValue, 'Change a user''s role, with a role_changed audit row (confirmation for owner/admin)')
            [CompletionResult]::new('reset-password', 'reset-password', [CompletionResultType]::ParameterValue, 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working')
            [CompletionResult]::new('lock', 'lock', [CompletionResultType]::ParameterValue, 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row')
            break
        }
        'ecomind-admin;help;users;list' {
            break
        }
        'ecomind-admin;help;users;set-role' {
            break
        }
        'ecomind-admin;help;users;reset-password' {
            break
        }
        'ecomind-admin;help;users;lock' {
            break
        }
        'ecomind-admin;help;users;unlock' {
            break
        }
        'ecomind-admin;help;orgs' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List organizations with their number of users, sorted by id (table, JSON or CSV)')
            break
        }
        'ecomind-admin;help;orgs;list' {
            break
        }
        'ecomind-admin;help;audit' {
            [CompletionResult]::new('suspicious-accounts', 'suspicious-accounts', [CompletionResultType]::ParameterValue, 'Find accounts that abused the fixed registration hole, and accounts under attack')
            break
        }
        'ecomind-admin;help;audit;suspicious-accounts' {
            break
        }
        'ecomind-admin;help;verify-schema' {
            break
        }
        'ecomind-admin;help;doctor' {
            break
        }
        'ecomind-admin;help;verify-deployment' {
            break
        }
        'ecomind-admin;help;upgrade' {
            break
        }
        'ecomind-admin;help;backup' {
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove a backup by a restore: into a scratch database made and dropped here (or --scratch-url), then verify-schema, the row counts against its manifest, and the audit on the copy (exit 1 unless the copy is faithful)')
            break
        }
        'ecomind-admin;help;backup;verify' {
            break
        }
        'ecomind-admin;help;restore' {
            break
        }
        'ecomind-admin;help;metrics' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve the metrics at GET /metrics (Prometheus scrapes it): each scrape reads the database on one reused connection, within --scrape-timeout')
            break
        }
        'ecomind-admin;help;metrics;serve' {
            break
        }
        'ecomind-admin;help;man' {
            break
        }
        'ecomind-admin;help;completions' {
            break
        }
        'ecomind-admin;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
