#!/bin/sh
# The entry point of the gateway's container (deploy/compose/Dockerfile): makes the CA bundle the
# container's TLS connections verify against, then runs the command (CMD: `homewatch gateway serve ...`).
#
# The gateway verifies the broker (mqtts://) and the SMTP server (STARTTLS) against OpenSSL's default CA
# certificates. The compose file's Mosquitto has a certificate of the municipality's own CA, mounted at
# HOMEWATCH_HUB_CA_FILE (the same file enrolment copies into every hub's kit). This writes the system's
# bundle plus that CA to $TMPDIR/homewatch-ca-bundle.crt (TMPDIR: /tmp) and points SSL_CERT_FILE there.
# compose.yaml sets SSL_CERT_FILE to the same file for the whole container, so `docker compose exec
# gateway homewatch admin ...` trusts the broker too. Without HOMEWATCH_HUB_CA_FILE the bundle is the
# system's alone.
set -eu

bundle=${TMPDIR:-/tmp}/homewatch-ca-bundle.crt
ca=${HOMEWATCH_HUB_CA_FILE:-}
[ -z "$ca" ] || [ -r "$ca" ] || {
    echo "homewatch-entrypoint: HOMEWATCH_HUB_CA_FILE=$ca cannot be read" >&2
    exit 2
}
cat /etc/ssl/certs/ca-certificates.crt ${ca:+"$ca"} >"$bundle.new"
mv "$bundle.new" "$bundle"
SSL_CERT_FILE=$bundle
export SSL_CERT_FILE
exec "$@"
