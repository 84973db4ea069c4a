# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ecomind_admin_global_optspecs
    string join \n database-url= schema= connect-timeout= config= env= parallel= canary= fail-fast lock-wait= allow-newer-schema format= color= o/output= q/quiet v/verbose h/help V/version
end

function __fish_ecomind_admin_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ecomind_admin_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ecomind_admin_using_subcommand
    set -l cmd (__fish_ecomind_admin_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -s V -l version -d 'Print version'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "migrate" -d 'Apply, revert and inspect the schema migrations'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "baseline" -d 'Adopt an existing database (hand-made or Alembic-managed) after proving which version its schema is; --undo removes the baseline'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "create-org" -d 'Create an organization (with an audit_logs row)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "create-admin" -d 'Create an owner or admin who can log in to the API (with an audit_logs row)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "users" -d 'The API\'s users: list them, change a role, reset a password'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "orgs" -d 'The API\'s organizations: list them (read-only)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "audit" -d 'Security audits (read-only)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "verify-schema" -d 'Compare the live schema with the expected schema of its version (exit 1 on drift)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "doctor" -d 'Check everything a deploy needs (exit 1 when something blocks it). Read-only'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "verify-deployment" -d 'Check the deployment at the running API, with the database beside it: the API answers, routes refuse requests without a token, the default JWT secret and expired tokens are refused, no owner or admin uses a published password'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "upgrade" -d 'The deployment plan\'s database steps in one: pre-flight, plan, backup, migrate, verify-schema, post-deploy audit, report (stops at a failing step, with the command that restores the backup; a rerun continues)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "backup" -d 'Back up the database (pg_dump / a SQLite copy) with a manifest of its row counts; `backup verify FILE` proves a backup by a restore into a scratch copy'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "restore" -d 'Put a backup back: the database\'s content replaced by the backup\'s in one transaction (no `migrate down` first), after showing who is connected and what it throws away; then checked (destructive: asks, or needs --yes)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "metrics" -d 'The deployment plan\'s monitoring metrics from the database, in the Prometheus text exposition format (read-only)'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "man" -d 'Print the man page (roff) to stdout'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "completions" -d 'Print shell completions to stdout'
complete -c ecomind-admin -n "__fish_ecomind_admin_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -f -a "up" -d 'Apply pending migrations (all, up to --to, or the next -n)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -f -a "down" -d 'Revert applied migrations (destructive: asks, or needs --yes)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -f -a "current" -d 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -f -a "status" -d 'List every migration with its Alembic revision, applied or pending, and when'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and not __fish_seen_subcommand_from up down current status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l to -d 'Apply up to and including VERSION (migration name or Alembic revision, e.g. 001)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -s n -l steps -d 'Apply only the next N pending migrations' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l ddl-lock-timeout -d 'lock_timeout for the migration\'s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment\'s ddl_lock_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l dry-run -d 'Print the SQL that would run (DDL and bookkeeping) and change nothing'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from up" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -s n -l steps -d 'Revert the newest N applied migrations' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l to -d 'Revert everything newer than VERSION (which stays applied)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l ddl-lock-timeout -d 'lock_timeout for the migration\'s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment\'s ddl_lock_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l all -d 'Revert every applied migration: drops all the API\'s tables and enum types'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l dry-run -d 'Print the SQL that would run and what it would drop; change nothing'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -s y -l yes -d 'Do not ask for confirmation (required when stdin is not a terminal)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from down" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l check -d 'Exit 1 when migrations are pending (for pipelines)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from current" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "up" -d 'Apply pending migrations (all, up to --to, or the next -n)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "down" -d 'Revert applied migrations (destructive: asks, or needs --yes)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "current" -d 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "status" -d 'List every migration with its Alembic revision, applied or pending, and when'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l to -d 'Adopt the database at VERSION (migration name or Alembic revision) instead of the detected one; its schema must still match VERSION' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l ddl-lock-timeout -d 'lock_timeout for the migration\'s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment\'s ddl_lock_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l dry-run -d 'Print the plan (version, tables, warnings, statements) and write nothing at all'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -s y -l yes -d 'Do not ask for confirmation (required when stdin is not a terminal)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l undo -d 'Remove the baseline: drop seaql_migrations. Never touches the API\'s tables or alembic_version'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand baseline" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l name -d 'The organization\'s name (stored exactly as given; 1 to 255 characters)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l id -d 'The id (lowercase letters, digits and underscore, 1 to 64 characters). Default: `org_` + 12 random lowercase hex digits' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l plan -d 'The plan' -r -f -a "free\t''
pro\t''
enterprise\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l if-not-exists -d 'When the id exists already: say so, print it, change nothing, exit 0'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-org" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l org -d 'The organization the user belongs to (it must exist)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l email -d 'The user\'s email (unique among all users, compared ignoring Unicode case and the IDNA spelling of the domain)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l name -d 'The user\'s display name' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l role -d 'The role' -r -f -a "admin\t''
owner\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l bcrypt-cost -d 'bcrypt cost factor, 4 to 31 (below 10 only for tests)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l password-stdin -d 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l if-not-exists -d 'When a user with that email exists: say so, change nothing (never the password), exit 0'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand create-admin" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -f -a "list" -d 'List users, sorted by org and email (table, JSON or CSV; streamed)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -f -a "set-role" -d 'Change a user\'s role, with a role_changed audit row (confirmation for owner/admin)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -f -a "reset-password" -d 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -f -a "lock" -d 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -f -a "unlock" -d 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and not __fish_seen_subcommand_from list set-role reset-password lock unlock help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l org -d 'Only the users of this organization (it must exist)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l role -d 'Only users with this role (repeatable)' -r -f -a "owner\t''
admin\t''
analyst\t''
viewer\t''
billing\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l email-like -d 'Only emails matching this SQL LIKE pattern, ignoring case (% any, _ one character)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l privileged -d 'Only owners and admins (the same as --role owner --role admin)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l id -d 'The user\'s id (the first column of `users list`), instead of the email' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l reason -d 'Why (kept in the audit row)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l yes -d 'Do not ask before an elevation to owner or admin (for scripts)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l force -d 'Allow taking the last owner or admin of an org below admin'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l dry-run -d 'Show the change and the audit row; write nothing'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from set-role" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l id -d 'The user\'s id (the first column of `users list`), instead of the email' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l bcrypt-cost -d 'bcrypt cost factor, 4 to 31 (below 10 only for tests)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l reason -d 'Why (kept in the audit row)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l password-stdin -d 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from reset-password" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l id -d 'The user\'s id (the first column of `users list`), instead of the email' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l reason -d 'Why (kept in the audit row)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l yes -d 'Do not ask (for scripts)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l force -d 'Allow locking the last owner or admin of an org'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from lock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l id -d 'The user\'s id (the first column of `users list`), instead of the email' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l role -d 'The role to give back (default: the one it had when it was locked)' -r -f -a "owner\t''
admin\t''
analyst\t''
viewer\t''
billing\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l reason -d 'Why (kept in the audit row)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l bcrypt-cost -d 'bcrypt cost factor, 4 to 31 (below 10 only for tests)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l yes -d 'Do not ask before giving back owner or admin (for scripts)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l password-stdin -d 'Read the password from the first line of stdin (trailing CR/LF stripped). Otherwise ECOMIND_ADMIN_PASSWORD, otherwise a hidden prompt (asked twice). There is no password flag: argv is visible to every user of the machine'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from unlock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "list" -d 'List users, sorted by org and email (table, JSON or CSV; streamed)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "set-role" -d 'Change a user\'s role, with a role_changed audit row (confirmation for owner/admin)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "reset-password" -d 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "lock" -d 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "unlock" -d 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -f -a "list" -d 'List organizations with their number of users, sorted by id (table, JSON or CSV)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and not __fish_seen_subcommand_from list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from help" -f -a "list" -d 'List organizations with their number of users, sorted by id (table, JSON or CSV)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand orgs; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -f -a "suspicious-accounts" -d 'Find accounts that abused the fixed registration hole, and accounts under attack'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and not __fish_seen_subcommand_from suspicious-accounts help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l since -d 'The window for event rules: a duration back from now (7d, 24h, 90m) or a timestamp (2026-11-01, 2026-11-01T12:00:00, naive UTC)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l fixed-at -d 'When the registration fix was deployed (naive UTC): enables registered-before-fix' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l org -d 'Only this organization' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l rule -d 'Run only these rules (repeatable). Default: all' -r -f -a "privileged-without-provenance\t''
elevated-role-at-registration\t''
registered-by-unauthorized\t''
registered-before-fix\t''
privileged-created-recently\t''
role-changed-recently\t''
brute-force\t''
success-after-failures\t''
case-variant-email\t''
multiple-owners\t''
privileged-without-password\t''
no-telemetry\t''
forged-provenance\t''
unreachable-email\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l failed-threshold -d 'Failed logins for one email within 60 seconds that make a brute-force finding' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l fail-on -d 'Exit 1 when a finding is at or above this severity' -r -f -a "critical\t''
warning\t''
info\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l show-sql -d 'Print each rule\'s SQL instead of running it'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from suspicious-accounts" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "suspicious-accounts" -d 'Find accounts that abused the fixed registration hole, and accounts under attack'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l against -d 'Compare against VERSION (migration name or Alembic revision, e.g. 001) or `head`, instead of the version the database records' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l strict -d 'Count warnings (extra tables, columns, indexes, enum types) as errors'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l show-fix -d 'Show the SQL that fixes each finding (always present in --format json)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-schema" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l api-url -d 'The running API\'s base URL (http:// or https://)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l wait -d 'Wait this long for the API to answer GET /health (like dbmate\'s --wait)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l accept -d 'A known, accepted failure, by check name (repeatable): listed as accepted in the report, never dropped; every other check still gates the exit code' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l junit -d 'Also write the checks as JUnit XML to FILE (for CI systems)' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l no-fixtures -d 'Only the probes that write nothing (no fixtures, so not the plan\'s Tests 1 to 5): for a production where the check may not write'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand verify-deployment" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l to -d 'Upgrade to this version (migration name or Alembic revision); default: the newest' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l backup-dir -d 'Where the backup goes (created, mode 0700, when missing)' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l pg-bin-dir -d 'The directory of pg_dump and pg_restore (default: PATH, then /usr/lib/postgresql/<N>/bin, newest first)' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l fail-on -d 'Exit 1 when the post-deploy audit finds something at or above this severity' -r -f -a "critical\t''
warning\t''
info\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l report -d 'Also write the JSON report to FILE (for the change record): the global `--output FILE`, by its older name' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l ddl-lock-timeout -d 'lock_timeout for the migration\'s statements: a migration queued behind a long transaction fails cleanly (exit 4, nothing changed) instead of blocking the table. Default: the environment\'s ddl_lock_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l no-backup -d 'Take no backup. Never implied: without it, no backup means no upgrade'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l no-verify-backup -d 'Do not prove the backup by a restore into a scratch copy (`backup verify`): for databases too large to restore twice. The plan says so'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -s y -l yes -d 'Do not ask for confirmation (required when stdin is not a terminal)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l allow-drift -d 'Go on when the schema has drifted from its version (the drift is still reported)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand upgrade" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l dir -d 'Where the backup goes (created, mode 0700, when missing)' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l pg-bin-dir -d 'The directory of pg_dump and pg_restore (default: PATH, then /usr/lib/postgresql/<N>/bin, newest first)' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -f -a "verify" -d 'Prove a backup by a restore: into a scratch database made and dropped here (or --scratch-url), then verify-schema, the row counts against its manifest, and the audit on the copy (exit 1 unless the copy is faithful)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and not __fish_seen_subcommand_from verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l scratch-url -d 'Restore into this empty PostgreSQL database instead of making one (emptied again afterwards). Refused when it is the source database or not empty. Prefer the ECOMIND_SCRATCH_URL variable to a password on the command line (argv is visible to every user of the machine)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l pg-bin-dir -d 'The directory of pg_restore' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Prove a backup by a restore: into a scratch database made and dropped here (or --scratch-url), then verify-schema, the row counts against its manifest, and the audit on the copy (exit 1 unless the copy is faithful)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand backup; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l pg-bin-dir -d 'The directory of pg_restore and psql (default: PATH, then /usr/lib/postgresql/<N>/bin, newest first)' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -s y -l yes -d 'Do not ask for confirmation (required when stdin is not a terminal)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l token-lifetime -d 'How long a token the API issues stays valid (its ACCESS_TOKEN_EXPIRE_MINUTES): the window of `ecomind_token_holders`' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l by-org -d 'Users by org and role (one series per org and role; off by default to keep the number of series bounded)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand metrics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l database-url -d 'Database URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full], or sqlite://FILE[?mode=rwc]. Default: DATABASE_URL, then ./.env, then sqlite://ecomind.db?mode=rwc. Prefer PGPASSWORD or .pgpass to a password in the URL. Given more than once: a fleet run over those databases' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l schema -d 'PostgreSQL schema that holds the API\'s tables, when it is not the first of the role\'s search_path (default: the URL\'s options, else the search_path, normally public). Every transaction runs with this search_path' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l connect-timeout -d 'How long to keep retrying a refused connection (e.g. 10s, 500ms, 2m). Default: the environment\'s connect_timeout, else 10s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l config -d 'The config file with the named environments. Default: ./ecomind-admin.toml when there is one' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l env -d 'The environment of the config file to use (its database and settings)' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l parallel -d 'Fleet runs: how many databases at once. Default: the environment\'s parallel, else 4' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l canary -d 'Fleet runs: run the first K databases alone, and the rest only if all K succeed' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l lock-wait -d 'The longest any statement waits for a lock another session holds (PostgreSQL: lock_timeout in every transaction; a note after 1 s names the holder), and for another ecomind-admin\'s migration lock; then exit 4. Default: the environment\'s lock_wait, else 60s' -r
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l format -d 'Output format of the result on stdout' -r -f -a "table\t'Human-readable tables'
json\t'One JSON document (stable, documented in the README)'
csv\t'CSV with a header row (audit suspicious-accounts, users list, orgs list)'
jsonl\t'JSON Lines: the document on one line; a fleet run writes one line per database as it finishes, then a summary line; users / orgs list one line per row'"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l color -d 'When to use colors on stderr and in tables (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -s o -l output -d 'Also write the result to FILE, atomically (a temporary file beside it, mode 0600, renamed when the command ends): in --format json, jsonl or csv as on stdout; with --format table, JSON in the file and the table on stdout' -r -F
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l fail-fast -d 'Fleet runs: start no new database after the first failure'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -l allow-newer-schema -d 'Write rows (create-org, create-admin, users ...) into a database that records migrations this build does not know (a newer ecomind-admin migrated it). Without it, such a write is refused (exit 4). Schema changes are always refused'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -s q -l quiet -d 'Print only the result and errors: no notes or progress'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -s v -l verbose -d 'Log every SQL statement to stderr (-vv: also the driver\'s debug logs)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "migrate" -d 'Apply, revert and inspect the schema migrations'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "baseline" -d 'Adopt an existing database (hand-made or Alembic-managed) after proving which version its schema is; --undo removes the baseline'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "create-org" -d 'Create an organization (with an audit_logs row)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "create-admin" -d 'Create an owner or admin who can log in to the API (with an audit_logs row)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "users" -d 'The API\'s users: list them, change a role, reset a password'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "orgs" -d 'The API\'s organizations: list them (read-only)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "audit" -d 'Security audits (read-only)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "verify-schema" -d 'Compare the live schema with the expected schema of its version (exit 1 on drift)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "doctor" -d 'Check everything a deploy needs (exit 1 when something blocks it). Read-only'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "verify-deployment" -d 'Check the deployment at the running API, with the database beside it: the API answers, routes refuse requests without a token, the default JWT secret and expired tokens are refused, no owner or admin uses a published password'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "upgrade" -d 'The deployment plan\'s database steps in one: pre-flight, plan, backup, migrate, verify-schema, post-deploy audit, report (stops at a failing step, with the command that restores the backup; a rerun continues)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "backup" -d 'Back up the database (pg_dump / a SQLite copy) with a manifest of its row counts; `backup verify FILE` proves a backup by a restore into a scratch copy'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "restore" -d 'Put a backup back: the database\'s content replaced by the backup\'s in one transaction (no `migrate down` first), after showing who is connected and what it throws away; then checked (destructive: asks, or needs --yes)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "metrics" -d 'The deployment plan\'s monitoring metrics from the database, in the Prometheus text exposition format (read-only)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "man" -d 'Print the man page (roff) to stdout'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "completions" -d 'Print shell completions to stdout'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and not __fish_seen_subcommand_from migrate baseline create-org create-admin users orgs audit verify-schema doctor verify-deployment upgrade backup restore metrics man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "up" -d 'Apply pending migrations (all, up to --to, or the next -n)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "down" -d 'Revert applied migrations (destructive: asks, or needs --yes)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "current" -d 'Show the current version (SeaORM and Alembic); --check exits 1 when migrations are pending'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "status" -d 'List every migration with its Alembic revision, applied or pending, and when'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "list" -d 'List users, sorted by org and email (table, JSON or CSV; streamed)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "set-role" -d 'Change a user\'s role, with a role_changed audit row (confirmation for owner/admin)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "reset-password" -d 'Set a new password (stdin, ECOMIND_ADMIN_PASSWORD or a prompt), with a password_reset audit row; the old password stops working'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "lock" -d 'Stop an account from logging in at once: role viewer and no password, with a user_locked audit row (incident response; `users unlock` reverses it)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "unlock" -d 'Reverse `users lock`: the role it had (or --role) and a new password, with a user_unlocked audit row'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from orgs" -f -a "list" -d 'List organizations with their number of users, sorted by id (table, JSON or CSV)'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "suspicious-accounts" -d 'Find accounts that abused the fixed registration hole, and accounts under attack'
complete -c ecomind-admin -n "__fish_ecomind_admin_using_subcommand help; and __fish_seen_subcommand_from backup" -f -a "verify" -d 'Prove a backup by a restore: into a scratch database made and dropped here (or --scratch-url), then verify-schema, the row counts against its manifest, and the audit on the copy (exit 1 unless the copy is faithful)'
