#!/bin/sh
# The accounts of the homewatch Mosquitto, each with the access rules of deploy/mosquitto/acl, kept by
# Mosquitto's dynamic-security plugin and made with mosquitto_ctrl (both ship with Debian's mosquitto).
#
#   homewatch-broker-accounts.sh init FILE ADMIN     once, broker stopped: the accounts file with an admin
#                                                    account and deny-by-default (FILE as in homewatch.conf)
#   homewatch-broker-accounts.sh setup               once, broker running: the gateway's account
#   homewatch-broker-accounts.sh add-hub HUB_ID      a hub's account (username = hub id) and its role
#   homewatch-broker-accounts.sh remove-hub HUB_ID   the hub's account and role (it is disconnected)
#
# The new account's password is read from standard input (one line; prompted for on a terminal).
# Except for init, mosquitto_ctrl reaches the broker with the options in its options file,
# $XDG_CONFIG_HOME/mosquitto_ctrl or ~/.config/mosquitto_ctrl (one option a line: -h, -p, -u ADMIN, -P,
# --cafile; mosquitto_ctrl(1)). The rules file is the acl next to this script unless HOMEWATCH_ACL names
# another.
#
# mosquitto_ctrl 2.0.11 exits 0 when a command fails (it prints "Error: ...") and when the broker never
# answers (it gives up after 10 s, silently): every call is checked on its output, and each account is
# read back from the broker before the script says it exists. Its `setDefaultACLAccess` does nothing
# (it sends a field the plugin does not read; fixed in 2.0.12), so init writes the defaults into the new
# file instead.
set -eu

ACL=${HOMEWATCH_ACL:-$(dirname "$0")/acl}
GATEWAY=homewatch-gateway

hint=""

die() {
    echo "homewatch-broker-accounts: $*" >&2
    [ -z "$hint" ] || echo "homewatch-broker-accounts: $hint" >&2
    exit 1
}

# ctrl COMMAND ARGS...: one dynsec command, stopping on an error. Only the command and its first argument
# are ever echoed (createClient carries a password).
ctrl() {
    out=$(mosquitto_ctrl dynsec "$@" 2>&1) || die "mosquitto_ctrl dynsec $1 failed: $out"
    case $out in
        *rror*) die "mosquitto_ctrl dynsec $1 $2: $(printf '%s\n' "$out" | grep -i error)" ;;
    esac
}

# gone COMMAND NAME: deleteClient or deleteRole NAME, which may be missing already (a half-made hub).
gone() {
    out=$(mosquitto_ctrl dynsec "$1" "$2" 2>&1) || die "mosquitto_ctrl dynsec $1 failed: $out"
    case $out in
        *"not found"*) echo "homewatch-broker-accounts: $2 was not there ($1)" ;;
        *rror*) die "mosquitto_ctrl dynsec $1 $2: $(printf '%s\n' "$out" | grep -i error)" ;;
    esac
}

# rules ROLE HUB_ID: "acltype topic allow|deny" for each line of ROLE in the rules file, %u replaced.
rules() {
    awk -v role="$1" '$1 == role && NF == 4 { print $2, $3, $4 }' "$ACL" | sed "s|%u|$2|g"
}

# check_rules ROLE: the rules file is readable and holds well-formed rules for ROLE (before any change).
check_rules() {
    [ -r "$ACL" ] || die "cannot read the rules file $ACL"
    malformed=$(awk -v role="$1" '$1 == role && NF != 4 { printf " %d", NR }' "$ACL")
    [ -z "$malformed" ] || die "$ACL, line(s)$malformed: a rule is '$1 ACLTYPE TOPIC allow|deny' only"
    [ "$(rules "$1" "" | wc -l)" -gt 0 ] || die "no rules for '$1' in $ACL"
}

# account USERNAME ROLE RULES_OF HUB_ID: a role with the rules of RULES_OF, then the account holding it,
# then both read back (a command the broker never answered leaves no trace otherwise).
account() {
    expected=$(rules "$3" "$4" | wc -l)
    ctrl createRole "$2"
    rules "$3" "$4" | while read -r acltype topic access; do
        ctrl addRoleACL "$2" "$acltype" "$topic" "$access"
    done
    ctrl createClient "$1" -p "$password"
    ctrl addClientRole "$1" "$2"
    found=$(mosquitto_ctrl dynsec getRole "$2" 2>/dev/null | grep -cE ': (allow|deny) +: ' || true)
    [ "$found" -eq "$expected" ] || die "role $2 holds $found of its $expected rules; check the broker's log"
    mosquitto_ctrl dynsec getClient "$1" 2>/dev/null | grep -q "^Roles: *$2 " ||
        die "account $1 does not hold role $2; check the broker's log"
}

read_password() {
    if [ -t 0 ]; then
        printf 'password for %s: ' "$1" >&2
        stty -echo
        IFS= read -r password || true
        stty echo
        echo >&2
    else
        IFS= read -r password || true
    fi
    [ -n "$password" ] || die "no password for $1 on standard input"
}

# The characters the hub's configuration allows in a hub id: no topic wildcard or separator, so %u
# cannot widen a rule.
check_hub_id() {
    case $1 in
        '' | *[!A-Za-z0-9_.-]*) die "a hub id is letters, digits, '_', '.' and '-' only, not '$1'" ;;
        "$GATEWAY") die "'$1' is the gateway's account, not a hub" ;;
    esac
}

case ${1:-} in
    init)
        [ $# -eq 3 ] || die "usage: $0 init ACCOUNTS_FILE ADMIN"
        [ ! -e "$2" ] || die "$2 exists already"
        read_password "$3"
        mosquitto_ctrl dynsec init "$2" "$3" "$password" >/dev/null
        [ -s "$2" ] || die "mosquitto_ctrl dynsec init did not write $2"
        # Deny by default whatever the rules do not allow: a client receives only what its role lists.
        # (`dynsec init` sets subscribe and publishClientSend to deny already, publishClientReceive to allow.)
        sed 's/"publishClientReceive":\([[:space:]]*\)true/"publishClientReceive":\1false/' "$2" >"$2.new"
        cat "$2.new" >"$2" # keeps the file's owner and mode
        rm "$2.new"
        grep -q '"publishClientReceive":[[:space:]]*false' "$2" || die "could not set the defaults in $2"
        echo "homewatch-broker-accounts: $2 written with admin account $3; start Mosquitto, then: $0 setup"
        ;;
    setup)
        check_rules gateway
        read_password "$GATEWAY"
        account "$GATEWAY" "$GATEWAY" gateway ""
        echo "homewatch-broker-accounts: $GATEWAY created; add each hub with: $0 add-hub HUB_ID"
        ;;
    add-hub)
        [ $# -eq 2 ] || die "usage: $0 add-hub HUB_ID"
        check_hub_id "$2"
        check_rules hub
        read_password "$2"
        hint="to undo a half-made hub: $0 remove-hub $2"
        account "$2" "hub:$2" hub "$2"
        echo "homewatch-broker-accounts: hub $2 created"
        ;;
    remove-hub)
        [ $# -eq 2 ] || die "usage: $0 remove-hub HUB_ID"
        check_hub_id "$2"
        gone deleteClient "$2"
        gone deleteRole "hub:$2"
        echo "homewatch-broker-accounts: hub $2 removed"
        ;;
    *)
        die "usage: $0 init ACCOUNTS_FILE ADMIN | setup | add-hub HUB_ID | remove-hub HUB_ID" \
            "(passwords on standard input)"
        ;;
esac
