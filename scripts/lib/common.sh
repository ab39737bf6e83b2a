# Shared by scripts/test, scripts/demo and scripts/bench: install what is missing, and run a
# throwaway PostgreSQL cluster in a temporary directory that is removed on exit.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages the build and the tests need, when they are missing.
ensure_packages() {
    local missing=()
    pkg-config --exists libpq 2>/dev/null || missing+=(libpq-dev)
    pkg-config --exists libsystemd 2>/dev/null || missing+=(libsystemd-dev)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    [ -n "$(postgres_bindir 2>/dev/null)" ] || missing+=(postgresql)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
    [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # promtool checks the alerts and the exposition
    # The encryption tests check interoperability against Python's cryptography (AESGCM).
    python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' >/dev/null 2>&1 || missing+=(python3-cryptography)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages: ${missing[*]}. Install them (as root: apt-get install ${missing[*]}) and run again."
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    install_without_services "${missing[@]}"
    # The tests run pgbouncers of their own; the package's service stays off at boot too.
    case " ${missing[*]} " in
        *" pgbouncer "*) update-rc.d pgbouncer disable >/dev/null 2>&1 || true ;;
    esac
    case " ${missing[*]} " in
        *" prometheus "*) update-rc.d prometheus disable >/dev/null 2>&1 || true ;;
    esac
}

# apt-get install with every service start refused: postinst scripts (pgbouncer's, postgresql's)
# would otherwise start a system daemon, or fail the install where no init system runs.
# A policy-rc.d answering 101 does it (invoke-rc.d and deb-systemd-invoke both ask it); any
# policy-rc.d already there is put back afterwards.
install_without_services() {
    local status=0
    POLICY_SAVED="" POLICY_ACTIVE=1
    if [ -e /usr/sbin/policy-rc.d ]; then
        POLICY_SAVED=$(mktemp /tmp/policy-rc.d.XXXXXX)
        cp -p /usr/sbin/policy-rc.d "$POLICY_SAVED"
    fi
    trap restore_policy EXIT  # also when interrupted; ensure_packages runs before any other trap is set
    printf '#!/bin/sh\n# written by projectionist scripts/lib/common.sh during apt-get install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
    restore_policy
    trap - EXIT
    [ $status -eq 0 ] || die "apt-get install $* failed (status $status)"
}

restore_policy() {
    [ "${POLICY_ACTIVE:-}" = 1 ] || return 0
    POLICY_ACTIVE=""
    if [ -n "$POLICY_SAVED" ]; then mv -f "$POLICY_SAVED" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
}

# The newest PostgreSQL server binary directory on this machine.
postgres_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && printf '%s\n' "$dir"
}

# A TCP port nobody listens on.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command as the cluster's owner (initdb refuses root).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Starts a throwaway cluster and exports PGHOST (its socket directory), PGPORT, PGUSER,
# PGDATABASE and PROJECTIONIST_TEST_DATABASE. Extra arguments become server settings (-c ...).
# The cluster is stopped and its directory removed when the calling script exits.
start_postgres() {
    local bindir owner
    bindir=$(postgres_bindir) || die "no PostgreSQL server binaries under /usr/lib/postgresql"
    PG_WORKDIR=$(mktemp -d /tmp/projectionist-pg.XXXXXX)
    chmod 755 "$PG_WORKDIR"
    owner=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        chown postgres: "$PG_WORKDIR"
        owner=postgres
    fi
    PG_PORT=$(free_port)
    trap stop_postgres EXIT
    trap 'exit 130' INT TERM
    as_owner "$bindir/initdb" -D "$PG_WORKDIR/data" -U "$owner" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C >"$PG_WORKDIR/initdb.log" 2>&1 || { cat "$PG_WORKDIR/initdb.log" >&2; die "initdb failed"; }
    local options="-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_WORKDIR"
    options+=" -c max_connections=500 -c shared_buffers=256MB"
    local setting
    for setting in "$@"; do options+=" -c $setting"; done
    as_owner "$bindir/pg_ctl" -D "$PG_WORKDIR/data" -l "$PG_WORKDIR/server.log" -o "$options" -w -t 60 start >/dev/null \
        || { cat "$PG_WORKDIR/server.log" >&2; die "PostgreSQL did not start"; }
    PG_BINDIR=$bindir
    export PGHOST=$PG_WORKDIR PGPORT=$PG_PORT PGUSER=$owner PGDATABASE=postgres
    export PROJECTIONIST_TEST_DATABASE="host=$PG_WORKDIR port=$PG_PORT user=$owner dbname=postgres"
    export PROJECTIONIST_TEST_TCP="host=127.0.0.1 port=$PG_PORT"
    log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $PG_WORKDIR port $PG_PORT"
}

stop_postgres() {
    local status=$?
    if [ -n "${PG_WORKDIR:-}" ] && [ -d "$PG_WORKDIR/data" ]; then
        as_owner "$PG_BINDIR/pg_ctl" -D "$PG_WORKDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_WORKDIR"
    fi
    return $status
}
