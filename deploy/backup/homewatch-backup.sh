#!/bin/sh
# Back up the homewatch database: one pg_dump archive (custom format, -Fc) and its SHA-256 next to it.
#
#   homewatch-backup.sh OUT_DIR
#
# The database is HOMEWATCH_DATABASE_URL's (the gateway's own variable: source /etc/homewatch/gateway.env
# or run it from the same EnvironmentFile); its password from the URL, PGPASSWORD or ~/.pgpass. It never
# asks for one (--no-password), so it runs unattended. The PostgreSQL tools are PG_BIN's (a folder with
# pg_dump, pg_restore and psql) when set, else the first on PATH.
#
# Writes OUT_DIR/homewatch-<database>-<UTC time>.dump and .dump.sha256 (`sha256sum -c` reads it), both
# readable by their owner only (the dump holds patient data), and prints the dump's path on stdout. The
# archive is written under a temporary name and renamed once pg_dump succeeded and the checksum is
# written, so a dump without its .sha256 is one that did not finish. The gateway may keep running: pg_dump
# reads one consistent snapshot and blocks no reading or writing (only schema changes wait for it).
#
# Refused, with one line on stderr: pg_dump older than the server (pg_dump cannot dump a newer server; on
# Debian take /usr/lib/postgresql/<server major>/bin as PG_BIN). Exit codes: 0 written, 1 failed or
# refused, 2 wrong usage. docs/operations.md has the schedule and the restore drill.
set -eu

me=homewatch-backup

die() {
    echo "$me: $*" >&2
    exit 1
}

usage() {
    echo "usage: $me OUT_DIR   (database: HOMEWATCH_DATABASE_URL; tools: PG_BIN or PATH)" >&2
    exit 2
}

# tool NAME: the path of a PostgreSQL program, from PG_BIN or PATH.
tool() {
    if [ -n "${PG_BIN:-}" ]; then
        [ -x "$PG_BIN/$1" ] || die "PG_BIN=$PG_BIN has no $1"
        echo "$PG_BIN/$1"
    else
        command -v "$1" || die "$1 is not on PATH; install PostgreSQL's client tools or set PG_BIN"
    fi
}

# major: the major version in a `--version` line or a version number on stdin ("pg_dump (PostgreSQL)
# 18.6" and "18.6" give 18; "15.20 (Debian 15.20-0+deb12u1)" gives 15).
major() {
    sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p' | head -n 1
}

# sha256 FILE: its SHA-256 in hex (sha256sum on Linux, shasum on macOS).
sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    else
        shasum -a 256 "$1" | cut -d ' ' -f 1
    fi
}

[ $# -eq 1 ] || usage
out_dir=$1
url=${HOMEWATCH_DATABASE_URL:-}
[ -n "$url" ] || {
    echo "$me: HOMEWATCH_DATABASE_URL is not set (the database to back up)" >&2
    exit 2
}

pg_dump=$(tool pg_dump)
pg_restore=$(tool pg_restore)
psql=$(tool psql)

# pg_dump must be at least the server's major version (older ones refuse, or miss what is new).
server=$("$psql" -X -A -t -q --no-password -d "$url" -c "SHOW server_version" 2>&1) ||
    die "cannot reach the database: $(printf '%s\n' "$server" | head -n 1)"
database=$("$psql" -X -A -t -q --no-password -d "$url" -c "SELECT current_database()")
dump_version=$("$pg_dump" --version)
server_major=$(printf '%s\n' "$server" | major)
dump_major=$(printf '%s\n' "$dump_version" | major)
[ "$dump_major" -ge "$server_major" ] ||
    die "$pg_dump is version $dump_major ($dump_version), older than the server ($server): use the tools of PostgreSQL $server_major or newer (PG_BIN=/usr/lib/postgresql/$server_major/bin on Debian)"

umask 077
mkdir -p "$out_dir"
name="homewatch-$database-$(date -u +%Y%m%dT%H%M%SZ).dump"
dump="$out_dir/$name"
[ ! -e "$dump" ] || die "$dump exists already"
partial="$out_dir/.$name.partial"
trap 'rm -f "$partial" "$partial.sha256"' EXIT
trap 'exit 1' HUP INT TERM

"$pg_dump" --format=custom --no-password --dbname="$url" --file="$partial" ||
    die "pg_dump failed (above); nothing written"
# The archive's table of contents reads back: the file is a whole pg_dump archive.
"$pg_restore" --list "$partial" >/dev/null || die "pg_restore cannot read the archive pg_dump wrote"
printf '%s  %s\n' "$(sha256 "$partial")" "$name" >"$partial.sha256"
mv "$partial" "$dump"
mv "$partial.sha256" "$dump.sha256"
trap - EXIT

echo "$me: database $database (PostgreSQL $server) -> $dump ($(wc -c <"$dump" | tr -d ' ') bytes, $dump_version)" >&2
echo "$dump"
