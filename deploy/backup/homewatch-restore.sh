#!/bin/sh
# Restore a homewatch database from an archive of homewatch-backup.sh, after checking its SHA-256.
#
#   homewatch-restore.sh [--replace] [--no-owner] DUMP
#
# The target database is HOMEWATCH_DATABASE_URL's; it must exist (createdb). The PostgreSQL tools are
# PG_BIN's when set, else the first on PATH. Stop the gateway first (systemctl stop homewatch-gateway):
# it would write into the database while it is replaced.
#
#   --replace   the target may hold tables: its schema public is emptied and the dump restored, in
#               one transaction; without it a database that holds any table is refused. (Safer still:
#               restore into a new database, check it, then swap the names; docs/operations.md.)
#   --no-owner  the restored objects belong to the user restoring, not to the roles of the dumped
#               server (use it when those roles do not exist here).
#
# Refused, with one line on stderr and the database untouched: DUMP without its .sha256 or whose SHA-256
# differs (a damaged or swapped file); pg_restore older than the pg_dump that wrote the archive; a target
# server older than the dumped one.
#
# A plain PostgreSQL dump is restored in ONE transaction (pg_restore --single-transaction
# --exit-on-error, or with --replace the emptying and the restore in one psql transaction): it restores
# whole or not at all. A TimescaleDB dump follows TimescaleDB's own procedure instead (into an
# empty database only: CREATE EXTENSION timescaledb, timescaledb_pre_restore(), pg_restore,
# timescaledb_post_restore()), which is not one transaction; if it fails, drop and create the database
# and run it again. Then ANALYZE (a dump carries no planner statistics). Exit codes: 0 restored, 1 failed
# or refused, 2 wrong usage. docs/operations.md has the restore drill.
set -eu

me=homewatch-restore

die() {
    echo "$me: $*" >&2
    exit 1
}

usage() {
    echo "usage: $me [--replace] [--no-owner] DUMP   (database: HOMEWATCH_DATABASE_URL; tools: PG_BIN or PATH)" >&2
    exit 2
}

tool() {
    if [ -n "${PG_BIN:-}" ]; then
        [ -x "$PG_BIN/$1" ] || die "PG_BIN=$PG_BIN has no $1"
        echo "$PG_BIN/$1"
    else
        command -v "$1" || die "$1 is not on PATH; install PostgreSQL's client tools or set PG_BIN"
    fi
}

major() {
    sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p' | head -n 1
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    else
        shasum -a 256 "$1" | cut -d ' ' -f 1
    fi
}

replace=no
owner=""
while [ $# -gt 0 ]; do
    case $1 in
        --replace) replace=yes ;;
        --no-owner) owner=--no-owner ;;
        --) shift && break ;;
        -*) usage ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 1 ] || usage
dump=$1
url=${HOMEWATCH_DATABASE_URL:-}
[ -n "$url" ] || {
    echo "$me: HOMEWATCH_DATABASE_URL is not set (the database to restore into)" >&2
    exit 2
}
[ -f "$dump" ] || die "no file $dump"

# 1. The archive is the one the backup wrote, byte for byte.
[ -f "$dump.sha256" ] || die "no checksum $dump.sha256 next to the dump: refusing to restore an unchecked file"
expected=$(cut -d ' ' -f 1 "$dump.sha256")
actual=$(sha256 "$dump")
[ "$actual" = "$expected" ] ||
    die "checksum mismatch: $dump has SHA-256 $actual, $dump.sha256 says $expected; the file is damaged or not the one backed up: refusing to restore"

pg_restore=$(tool pg_restore)
psql=$(tool psql)

# 2. The tools can read it and the server can take it.
contents=$("$pg_restore" --list "$dump" 2>&1) ||
    die "$pg_restore cannot read $dump ($(printf '%s\n' "$contents" | head -n 1)); a pg_restore as new as the pg_dump that wrote it is needed"
dumped_by=$(printf '%s\n' "$contents" | sed -n 's/^;[[:space:]]*Dumped by pg_dump version:[[:space:]]*//p')
dumped_from=$(printf '%s\n' "$contents" | sed -n 's/^;[[:space:]]*Dumped from database version:[[:space:]]*//p')
restore_version=$("$pg_restore" --version)
[ "$(printf '%s\n' "$restore_version" | major)" -ge "$(printf '%s\n' "$dumped_by" | major)" ] ||
    die "$pg_restore ($restore_version) is older than the pg_dump $dumped_by that wrote $dump"

server=$("$psql" -X -A -t -q --no-password -d "$url" -c "SHOW server_version" 2>&1) ||
    die "cannot reach the database: $(printf '%s\n' "$server" | head -n 1)"
[ "$(printf '%s\n' "$server" | major)" -ge "$(printf '%s\n' "$dumped_from" | major)" ] ||
    die "the target server ($server) is older than the dumped one ($dumped_from): restore into PostgreSQL $(printf '%s\n' "$dumped_from" | major) or newer"

query() {
    "$psql" -X -A -t -q --no-password -v ON_ERROR_STOP=1 -d "$url" -c "$1"
}
database=$(query "SELECT current_database()")
# Tables of the database's own (an extension's tables, such as TimescaleDB's catalog in a database made
# from a template that has it, do not count).
tables=$(query "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND NOT EXISTS (SELECT 1 FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')")

# --replace: schema public emptied, as it was made again: same owner, privileges and comment.
EMPTY_PUBLIC='DO $replace$
DECLARE
    owner_name name;
    privileges aclitem[];
    description text;
    entry record;
BEGIN
    SELECT pg_get_userbyid(nspowner), nspacl, obj_description(oid, $$pg_namespace$$)
        INTO owner_name, privileges, description FROM pg_namespace WHERE nspname = $$public$$;
    DROP SCHEMA public CASCADE;
    EXECUTE format($$CREATE SCHEMA public AUTHORIZATION %I$$, owner_name);
    FOR entry IN SELECT grantee, privilege_type, is_grantable FROM aclexplode(privileges) LOOP
        EXECUTE format($$GRANT %s ON SCHEMA public TO %s%s$$, entry.privilege_type,
            CASE WHEN entry.grantee = 0 THEN $$PUBLIC$$ ELSE quote_ident(pg_get_userbyid(entry.grantee)) END,
            CASE WHEN entry.is_grantable THEN $$ WITH GRANT OPTION$$ ELSE $$$$ END);
    END LOOP;
    EXECUTE format($$COMMENT ON SCHEMA public IS %L$$, description);
END
$replace$;'

# 3. Restore. A TimescaleDB database's dump lists the extension in its table of contents as
# "<id>; 3079 <oid> EXTENSION - timescaledb " (the owner column is empty: note the space).
TIMESCALEDB_ENTRY=' EXTENSION - timescaledb( |$)'
if printf '%s\n' "$contents" | grep -Eq "$TIMESCALEDB_ENTRY"; then
    [ "$tables" -eq 0 ] ||
        die "$dump is a TimescaleDB database: restore it into a new, empty database (dropdb, createdb), not over $database's $tables table(s)"
    query "CREATE EXTENSION IF NOT EXISTS timescaledb" >/dev/null
    query "SELECT timescaledb_pre_restore()" >/dev/null
    status=0
    "$pg_restore" --no-password $owner --dbname="$url" "$dump" || status=$?
    query "SELECT timescaledb_post_restore()" >/dev/null
    [ "$status" -eq 0 ] ||
        die "pg_restore reported errors (above; TimescaleDB's documentation lists some that are harmless): check them, or drop and create the database and run this again"
elif [ "$tables" -eq 0 ]; then
    # shellcheck disable=SC2086 # $owner is an option (or nothing)
    "$pg_restore" --single-transaction --exit-on-error --no-password $owner --dbname="$url" "$dump" ||
        die "pg_restore failed (above); nothing was restored (one transaction)"
elif [ "$replace" = yes ]; then
    # Not pg_restore --clean: its DROPs fail on a partitioned table ("cannot drop inherited constraint
    # observations_default_pkey"). Instead, in ONE transaction: schema public emptied (dropped and made
    # again with its owner, privileges and comment), then the dump's SQL. COMMIT is sent only once
    # pg_restore has written all of it; psql stops at the first error; either way the server rolls back.
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    {
        echo "BEGIN;"
        echo "SET client_min_messages = warning;"
        echo "$EMPTY_PUBLIC"
        # shellcheck disable=SC2086
        if "$pg_restore" --file=- $owner "$dump"; then echo "COMMIT;"; else touch "$work/failed"; fi
    } | "$psql" -X -q --no-password -v ON_ERROR_STOP=1 -d "$url" >/dev/null || touch "$work/failed"
    [ ! -e "$work/failed" ] || die "the restore failed (above); nothing was replaced (one transaction)"
else
    die "the database $database holds $tables table(s): add --replace to replace them with the dump (stop the gateway first), or restore into a new database"
fi
query "ANALYZE" >/dev/null

summary=""
for table in observations alerts; do
    if [ "$(query "SELECT to_regclass('$table') IS NOT NULL")" = t ]; then
        summary="${summary:+$summary, }$table $(query "SELECT count(*) FROM $table")"
    fi
done
echo "$me: restored $dump (PostgreSQL $dumped_from, pg_dump $dumped_by) into database $database (PostgreSQL $server)${summary:+: $summary}" >&2
