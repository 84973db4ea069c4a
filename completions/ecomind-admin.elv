
use builtin;
use str;

set edit:completion:arg-completer[ecomind-admin] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'ecomind-admin'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'ecomind-admin'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand migrate 'Apply, revert and inspect the schema migrations'
            cand baseline 'Adopt an existing database (hand-made or Alembic-managed) after proving which version its schema is; --undo removes the baseline'
            cand create-org 'Create an organization (with an audit_logs row)'
            cand create-admin 'Create an owner or admin who can log in to the API (with an audit_logs row)'
            cand users 'The API''s users: list them, change a role, reset a password'
            cand orgs 'The API''s organizations: list them (read-only)'
            cand audit 'Security audits (read-only)'
            cand verify-schema 'Compare the live schema with the expected schema of its version (exit 1 on drift)'
            cand doctor 'Check everything a deploy needs (exit 1 when something blocks it). Read-only'
            cand upgrade 'The deployment plan''s database steps in one: pre-flight, plan, backup, migrate, verify-schema, post-deploy audit, report (stops at a failing step, with the command that restores the backup; a rerun continues)'
            cand man 'Print the man page (roff) to stdout'
            cand completions 'Print shell completions to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;migrate'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand up 'Apply pending migrations (all, up to --to, or the next -n)'
            cand down 'Revert applied migrations (destructive: asks, or needs --yes)'
            cand current 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending'
            cand status 'List every migration with its Alembic revision, applied or pending, and when'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;migrate;up'= {
            cand --to 'Apply up to and including VERSION (migration name or Alembic revision, e.g. 001)'
            cand -n 'Apply only the next N pending migrations'
            cand --steps 'Apply only the next N pending migrations'
            cand --ddl-lock-timeout 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --dry-run 'Print the SQL that would run (DDL and bookkeeping) and change nothing'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;migrate;down'= {
            cand -n 'Revert the newest N applied migrations'
            cand --steps 'Revert the newest N applied migrations'
            cand --to 'Revert everything newer than VERSION (which stays applied)'
            cand --ddl-lock-timeout 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --all 'Revert every applied migration: drops all the API''s tables and enum types'
            cand --dry-run 'Print the SQL that would run and what it would drop; change nothing'
            cand -y 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand --yes 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;migrate;current'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --check 'Exit 1 when migrations are pending (for pipelines)'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;migrate;status'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;migrate;help'= {
            cand up 'Apply pending migrations (all, up to --to, or the next -n)'
            cand down 'Revert applied migrations (destructive: asks, or needs --yes)'
            cand current 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending'
            cand status 'List every migration with its Alembic revision, applied or pending, and when'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;migrate;help;up'= {
        }
        &'ecomind-admin;migrate;help;down'= {
        }
        &'ecomind-admin;migrate;help;current'= {
        }
        &'ecomind-admin;migrate;help;status'= {
        }
        &'ecomind-admin;migrate;help;help'= {
        }
        &'ecomind-admin;baseline'= {
            cand --to 'Adopt the database at VERSION (migration name or Alembic revision) instead of the detected one; its schema must still match VERSION'
            cand --ddl-lock-timeout 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --dry-run 'Print the plan (version, tables, warnings, statements) and write nothing at all'
            cand -y 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand --yes 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand --undo 'Remove the baseline: drop seaql_migrations. Never touches the API''s tables or alembic_version'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;create-org'= {
            cand --name 'The organization''s name (stored exactly as given; 1 to 255 characters)'
            cand --id 'The id (lowercase letters, digits and underscore, 1 to 64 characters). Default: `org_` + 12 random lowercase hex digits'
            cand --plan 'The plan'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --if-not-exists 'When the id exists already: say so, print it, change nothing, exit 0'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;create-admin'= {
            cand --org 'The organization the user belongs to (it must exist)'
            cand --email 'The user''s email (unique among all users, compared ignoring Unicode case and the IDNA spelling of the domain)'
            cand --name 'The user''s display name'
            cand --role 'The role'
            cand --bcrypt-cost 'bcrypt cost factor, 4 to 31 (below 10 only for tests)'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --password-stdin 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine'
            cand --if-not-exists 'When a user with that email exists: say so, change nothing (never the password), exit 0'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;users'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand list 'List users, sorted by org and email (table, JSON or CSV; streamed)'
            cand set-role 'Change a user''s role, with a role_changed audit row (confirmation for owner/admin)'
            cand reset-password 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working'
            cand lock 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)'
            cand unlock 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;users;list'= {
            cand --org 'Only the users of this organization (it must exist)'
            cand --role 'Only users with this role (repeatable)'
            cand --email-like 'Only emails matching this SQL LIKE pattern, ignoring case (% any, _ one character)'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --privileged 'Only owners and admins (the same as --role owner --role admin)'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;users;set-role'= {
            cand --id 'The user''s id (the first column of `users list`), instead of the email'
            cand --reason 'Why (kept in the audit row)'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --yes 'Do not ask before an elevation to owner or admin (for scripts)'
            cand --force 'Allow taking the last owner or admin of an org below admin'
            cand --dry-run 'Show the change and the audit row; write nothing'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;users;reset-password'= {
            cand --id 'The user''s id (the first column of `users list`), instead of the email'
            cand --bcrypt-cost 'bcrypt cost factor, 4 to 31 (below 10 only for tests)'
            cand --reason 'Why (kept in the audit row)'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --password-stdin 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;users;lock'= {
            cand --id 'The user''s id (the first column of `users list`), instead of the email'
            cand --reason 'Why (kept in the audit row)'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --yes 'Do not ask (for scripts)'
            cand --force 'Allow locking the last owner or admin of an org'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;users;unlock'= {
            cand --id 'The user''s id (the first column of `users list`), instead of the email'
            cand --role 'The role to give back (default: the one it had when it was locked)'
            cand --reason 'Why (kept in the audit row)'
            cand --bcrypt-cost 'bcrypt cost factor, 4 to 31 (below 10 only for tests)'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --yes 'Do not ask before giving back owner or admin (for scripts)'
            cand --password-stdin 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;users;help'= {
            cand list 'List users, sorted by org and email (table, JSON or CSV; streamed)'
            cand set-role 'Change a user''s role, with a role_changed audit row (confirmation for owner/admin)'
            cand reset-password 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working'
            cand lock 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)'
            cand unlock 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;users;help;list'= {
        }
        &'ecomind-admin;users;help;set-role'= {
        }
        &'ecomind-admin;users;help;reset-password'= {
        }
        &'ecomind-admin;users;help;lock'= {
        }
        &'ecomind-admin;users;help;unlock'= {
        }
        &'ecomind-admin;users;help;help'= {
        }
        &'ecomind-admin;orgs'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand list 'List organizations with their number of users, sorted by id (table, JSON or CSV)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;orgs;list'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;orgs;help'= {
            cand list 'List organizations with their number of users, sorted by id (table, JSON or CSV)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;orgs;help;list'= {
        }
        &'ecomind-admin;orgs;help;help'= {
        }
        &'ecomind-admin;audit'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand suspicious-accounts 'Find accounts that abused the fixed registration hole, and accounts under attack'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;audit;suspicious-accounts'= {
            cand --since 'The window for event rules: a duration back from now (7d, 24h, 90m) or a timestamp (2026-11-01, 2026-11-01T12:00:00, naive UTC)'
            cand --fixed-at 'When the registration fix was deployed (naive UTC): enables registered-before-fix'
            cand --org 'Only this organization'
            cand --rule 'Run only these rules (repeatable). Default: all'
            cand --failed-threshold 'Failed logins for one email within 60 seconds that make a brute-force finding'
            cand --fail-on 'Exit 1 when a finding is at or above this severity'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --show-sql 'Print each rule''s SQL instead of running it'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;audit;help'= {
            cand suspicious-accounts 'Find accounts that abused the fixed registration hole, and accounts under attack'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;audit;help;suspicious-accounts'= {
        }
        &'ecomind-admin;audit;help;help'= {
        }
        &'ecomind-admin;verify-schema'= {
            cand --against 'Compare against VERSION (migration name or Alembic revision, e.g. 001) or `head`, instead of the version the database records'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --strict 'Count warnings (extra tables, columns, indexes, enum types) as errors'
            cand --show-fix 'Show the SQL that fixes each finding (always present in --format json)'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;doctor'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;upgrade'= {
            cand --to 'Upgrade to this version (migration name or Alembic revision); default: the newest'
            cand --backup-dir 'Where the backup goes (created, mode 0700, when missing)'
            cand --pg-bin-dir 'The directory of pg_dump and pg_restore (default: PATH, then /usr/lib/postgresql/<N>/bin, newest first)'
            cand --fail-on 'Exit 1 when the post-deploy audit finds something at or above this severity'
            cand --report 'Also write the JSON report to FILE (for the change record): the global `--output FILE`, by its older name'
            cand --ddl-lock-timeout 'lock_timeout for the migration''s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment''s ddl_lock_timeout, else 10s'
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --no-backup 'Take no backup. Never implied: without it, no backup means no upgrade'
            cand -y 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand --yes 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand --allow-drift 'Go on when the schema has drifted from its version (the drift is still reported)'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;man'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;completions'= {
            cand --database-url 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases'
            cand --schema 'PostgreSQL schema that holds the API''s tables, when it is not the first of the role''s search_path (default: the URL''s options, else the search_path, normally public). Every transaction runs with this search_path'
            cand --connect-timeout 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment''s connect_timeout, else 10s'
            cand --config 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one'
            cand --env 'The environment of the config file to use (its database and settings)'
            cand --parallel 'Fleet runs: how many databases at once. Default: the environment''s parallel, else 4'
            cand --canary 'Fleet runs: run the first K databases alone, and the rest only if all K succeed'
            cand --lock-wait 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin''s migration lock; then exit 4. Default: the environment''s lock_wait, else 60s'
            cand --format 'Output format of the result on stdout'
            cand --color 'When to use colors on stderr and in tables (NO_COLOR is honoured)'
            cand -o 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --output 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout'
            cand --fail-fast 'Fleet runs: start no new database after the first failure'
            cand --allow-newer-schema 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
            cand -q 'Print only the result and errors: no notes or progress'
            cand --quiet 'Print only the result and errors: no notes or progress'
            cand -v 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand --verbose 'Log every SQL statement to stderr (-vv: also the driver''s debug logs)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'ecomind-admin;help'= {
            cand migrate 'Apply, revert and inspect the schema migrations'
            cand baseline 'Adopt an existing database (hand-made or Alembic-managed) after proving which version its schema is; --undo removes the baseline'
            cand create-org 'Create an organization (with an audit_logs row)'
            cand create-admin 'Create an owner or admin who can log in to the API (with an audit_logs row)'
            cand users 'The API''s users: list them, change a role, reset a password'
            cand orgs 'The API''s organizations: list them (read-only)'
            cand audit 'Security audits (read-only)'
            cand verify-schema 'Compare the live schema with the expected schema of its version (exit 1 on drift)'
            cand doctor 'Check everything a deploy needs (exit 1 when something blocks it). Read-only'
            cand upgrade 'The deployment plan''s database steps in one: pre-flight, plan, backup, migrate, verify-schema, post-deploy audit, report (stops at a failing step, with the command that restores the backup; a rerun continues)'
            cand man 'Print the man page (roff) to stdout'
            cand completions 'Print shell completions to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ecomind-admin;help;migrate'= {
            cand up 'Apply pending migrations (all, up to --to, or the next -n)'
            cand down 'Revert applied migrations (destructive: asks, or needs --yes)'
            cand current 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending'
            cand status 'List every migration with its Alembic revision, applied or pending, and when'
        }
        &'ecomind-admin;help;migrate;up'= {
        }
        &'ecomind-admin;help;migrate;down'= {
        }
        &'ecomind-admin;help;migrate;current'= {
        }
        &'ecomind-admin;help;migrate;status'= {
        }
        &'ecomind-admin;help;baseline'= {
        }
        &'ecomind-admin;help;create-org'= {
        }
        &'ecomind-admin;help;create-admin'= {
        }
        &'ecomind-admin;help;users'= {
            cand list 'List users, sorted by org and email (table, JSON or CSV; streamed)'
            cand set-role 'Change a user''s role, with a role_changed audit row (confirmation for owner/admin)'
            cand reset-password 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working'
            cand lock 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)'
            cand unlock 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row'
        }
        &'ecomind-admin;help;users;list'= {
        }
        &'ecomind-admin;help;users;set-role'= {
        }
        &'ecomind-admin;help;users;reset-password'= {
        }
        &'ecomind-admin;help;users;lock'= {
        }
        &'ecomind-admin;help;users;unlock'= {
        }
        &'ecomind-admin;help;orgs'= {
            cand list 'List organizations with their number of users, sorted by id (table, JSON or CSV)'
        }
        &'ecomind-admin;help;orgs;list'= {
        }
        &'ecomind-admin;help;audit'= {
            cand suspicious-accounts 'Find accounts that abused the fixed registration hole, and accounts under attack'
        }
        &'ecomind-admin;help;audit;suspicious-accounts'= {
        }
        &'ecomind-admin;help;verify-schema'= {
        }
        &'ecomind-admin;help;doctor'= {
        }
        &'ecomind-admin;help;upgrade'= {
        }
        &'ecomind-admin;help;man'= {
        }
        &'ecomind-admin;help;completions'= {
        }
        &'ecomind-admin;help;help'= {
        }
    ]
    $completions[$command]
}
