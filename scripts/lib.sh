# shellcheck shell=bash
# Shared helpers for scripts/serve and scripts/test.  Source it, don't run it:
#
#     . "$(dirname "$0")/lib.sh"
#
# It sets REPO_ROOT and VENV and defines:
#   log / warn / die          messages on stderr, prefixed "[dsmf]"
#   is_root, is_ci, have CMD  predicates
#   find_python311            prints the path of a working Python 3.11, or fails
#   ensure_venv               creates/refreshes .venv and installs the project into it
#   apt_install PKG...        apt-get install as root (apt-get update once per run)
#   find_pg_bindir            prints the directory holding initdb/pg_ctl/postgres
#   find_softhsm_module       prints the path of libsofthsm2.so
#   free_port                 prints a free TCP port on 127.0.0.1
#   pg_throwaway_start        starts a throwaway PostgreSQL cluster (see its comment)
#   pg_throwaway_stop         stops it and deletes its files (idempotent)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
# The stamp records that `pip install -e '.[dev]'` succeeded; it is redone when
# pyproject.toml is newer than the stamp.
VENV_STAMP="$VENV/.dsmf-installed"

log()  { printf '[dsmf] %s\n' "$*" >&2; }
warn() { printf '[dsmf] WARNING: %s\n' "$*" >&2; }
die()  { printf '[dsmf] ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }
# have CMD — CMD is on PATH as an executable regular file.
have() { local p; p="$(command -v "$1" 2>/dev/null)" && [ -f "$p" ] && [ -x "$p" ]; }
is_ci()   { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }

# --------------------------------------------------------------------------
# Python 3.11
# --------------------------------------------------------------------------

# True if "$1" runs and is CPython/any Python 3.11.
_is_py311() {
    [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
        >/dev/null 2>&1
}

# True if "$1" can create a virtualenv with pip in it (Debian splits ensurepip
# into the python3.11-venv package).
_has_venv() {
    "$1" -c 'import ensurepip, venv' >/dev/null 2>&1
}

# Candidate interpreters, best first, one per line (may contain non-existent ones).
_py311_candidates() {
    [ -n "${DSMF_PYTHON:-}" ] && printf '%s\n' "$DSMF_PYTHON"
    local name
    for name in python3.11 python3 python; do
        command -v "$name" 2>/dev/null || true
    done
    # pyenv installs (its shims may not be on PATH in a non-interactive shell).
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    local d
    for d in "$pyenv_root"/versions/3.11*/bin/python3.11; do
        [ -x "$d" ] && printf '%s\n' "$d"
    done
    # `py -3.11`-style launchers (the Python launcher for Unix, uv-managed Pythons).
    if command -v py >/dev/null 2>&1; then
        py -3.11 -c 'import sys; print(sys.executable)' 2>/dev/null || true
    fi
    if command -v uv >/dev/null 2>&1; then
        uv python find 3.11 2>/dev/null || true
    fi
    printf '%s\n' /usr/bin/python3.11 /usr/local/bin/python3.11 /opt/python3.11/bin/python3.11
}

# Prints a Python 3.11 interpreter that can make venvs.  If only a 3.11 without
# the venv module is found: installs python3.11-venv when root on Debian,
# otherwise explains.  If no 3.11 at all: explains how to get one and exits 1.
find_python311() {
    local cand without_venv=""
    while IFS= read -r cand; do
        [ -n "$cand" ] || continue
        _is_py311 "$cand" || continue
        if _has_venv "$cand"; then
            printf '%s\n' "$cand"
            return 0
        fi
        [ -n "$without_venv" ] || without_venv="$cand"
    done < <(_py311_candidates)

    if [ -n "$without_venv" ]; then
        if is_root && command -v apt-get >/dev/null 2>&1; then
            log "Python 3.11 at $without_venv lacks the venv module; installing python3.11-venv"
            apt_install python3.11-venv
            if _has_venv "$without_venv"; then
                printf '%s\n' "$without_venv"
                return 0
            fi
        fi
        die "Python 3.11 found at $without_venv but it cannot create virtualenvs (no ensurepip).
        On Debian/Ubuntu: sudo apt-get install python3.11-venv   then re-run this script."
    fi

    if [ -n "${DSMF_PYTHON:-}" ]; then
        die "DSMF_PYTHON=$DSMF_PYTHON is not a working Python 3.11 interpreter"
    fi
    local seen
    seen="$(for n in python3 python python3.10 python3.12 python3.13 python3.14; do
        p="$(command -v "$n" 2>/dev/null)" && printf '  %s -> %s\n' "$p" \
            "$("$p" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo '?')"
    done)"
    die "This project needs Python 3.11 exactly (spyne does not import on 3.12+), and none was found.
${seen:+Found instead:
$seen
}Get Python 3.11, then re-run:
  - Debian 12 / Ubuntu 22.04:  sudo apt-get install python3.11 python3.11-venv
  - other systems:             pyenv install 3.11  (https://github.com/pyenv/pyenv)  or  uv python install 3.11
  - or point DSMF_PYTHON at a 3.11 interpreter:  DSMF_PYTHON=/path/to/python3.11 $0"
}

# --------------------------------------------------------------------------
# Virtualenv
# --------------------------------------------------------------------------

# Ensures $VENV exists, runs Python 3.11, and has the project installed
# (editable, with the dev extra).  Fast when nothing changed.
ensure_venv() {
    local py
    if [ -x "$VENV/bin/python" ] && _is_py311 "$VENV/bin/python"; then
        :
    else
        py="$(find_python311)" || exit 1
        if [ -e "$VENV" ]; then
            log "$VENV does not run Python 3.11; recreating it with $py"
        else
            log "creating virtualenv .venv with $py"
        fi
        "$py" -m venv --clear "$VENV" || die "could not create the virtualenv at $VENV"
        rm -f "$VENV_STAMP"
    fi

    if [ ! -f "$VENV_STAMP" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$VENV_STAMP" ] \
        || [ ! -x "$VENV/bin/dsmf-gateway" ]; then
        log "installing the project into .venv (pip install -e '.[dev]'; needs PyPI the first time)"
        local pip_log
        pip_log="$(mktemp "${TMPDIR:-/tmp}/dsmf-pip.XXXXXX")"
        if ! (cd "$REPO_ROOT" && PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "$VENV/bin/python" -m pip install -q -e '.[dev]') >"$pip_log" 2>&1; then
            tail -n 40 "$pip_log" >&2
            rm -f "$pip_log"
            die "pip install -e '.[dev]' failed (last lines above)"
        fi
        rm -f "$pip_log"
        touch "$VENV_STAMP"
    fi
}

# --------------------------------------------------------------------------
# System packages
# --------------------------------------------------------------------------

_APT_UPDATED=""
# apt_install PKG... — as root only; runs `apt-get update` once per script run.
apt_install() {
    is_root || die "apt_install needs root"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    local apt_log
    apt_log="$(mktemp "${TMPDIR:-/tmp}/dsmf-apt.XXXXXX")"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$_APT_UPDATED" ]; then
        log "apt-get update"
        if ! apt-get -o DPkg::Lock::Timeout=300 update -q >"$apt_log" 2>&1; then
            tail -n 20 "$apt_log" >&2
            rm -f "$apt_log"
            die "apt-get update failed"
        fi
        _APT_UPDATED=1
    fi
    log "apt-get install $*"
    if ! apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" \
        </dev/null >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2
        rm -f "$apt_log"
        die "apt-get install $* failed"
    fi
    rm -f "$apt_log"
}

# Prints the bin directory of the newest PostgreSQL server found (Debian keeps
# them out of PATH in /usr/lib/postgresql/<ver>/bin).  Fails if none.
find_pg_bindir() {
    local d best=""
    if [ -n "${DSMF_PG_BINDIR:-}" ] && [ -x "$DSMF_PG_BINDIR/initdb" ]; then
        printf '%s\n' "$DSMF_PG_BINDIR"
        return 0
    fi
    while IFS= read -r d; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && best="$d"
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    if [ -z "$best" ] && command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null)"
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
    fi
    if [ -z "$best" ] && command -v initdb >/dev/null 2>&1; then
        d="$(dirname "$(command -v initdb)")"
        [ -x "$d/pg_ctl" ] && best="$d"
    fi
    [ -n "$best" ] && printf '%s\n' "$best"
}

# Prints the path of the SoftHSM2 PKCS#11 module.  Fails if none.
find_softhsm_module() {
    local f
    for f in "${DSMF_SOFTHSM2_MODULE:-}" \
        /usr/lib/softhsm/libsofthsm2.so \
        /usr/lib/*-linux-gnu*/softhsm/libsofthsm2.so \
        /usr/lib64/softhsm/libsofthsm2.so \
        /usr/lib64/pkcs11/libsofthsm2.so \
        /usr/local/lib/softhsm/libsofthsm2.so \
        /opt/homebrew/lib/softhsm/libsofthsm2.so; do
        if [ -n "$f" ] && [ -f "$f" ]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}

# Prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
    "$VENV/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# --------------------------------------------------------------------------
# Throwaway PostgreSQL cluster
# --------------------------------------------------------------------------
#
# pg_throwaway_start BINDIR — initdb a fresh cluster in a temp dir, trust auth,
# superuser "postgres", TCP on 127.0.0.1 only (free port), Unix socket inside
# the temp dir, durability off for speed; creates database dsmf_test and sets
# PG_THROWAWAY_URL (SQLAlchemy form) and PG_THROWAWAY_DIR.  As root the server
# runs as the `postgres` system user (initdb and postgres refuse to run as root).
# The caller must arrange for pg_throwaway_stop to run on exit (a trap).

PG_THROWAWAY_DIR=""
# shellcheck disable=SC2034  # read by scripts/test
PG_THROWAWAY_URL=""
_PG_BINDIR=""

# Runs a command as the cluster owner: `postgres` when we are root, else ourselves.
# The working directory is the cluster dir, which that user can always enter.
_pg_as_owner() {
    if is_root; then
        (cd "$PG_THROWAWAY_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$PG_THROWAWAY_DIR" && "$@")
    fi
}

pg_throwaway_start() {
    _PG_BINDIR="$1"
    if is_root; then
        id -u postgres >/dev/null 2>&1 \
            || die "running as root but there is no 'postgres' system user to run the server as"
        command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) not found"
    fi
    # The socket path must stay short (~107 bytes max) and, as root, the dir
    # must be reachable by the postgres user: else fall back to /tmp.
    local parent="${TMPDIR:-/tmp}"
    if [ "${#parent}" -gt 60 ] || { is_root && ! runuser -u postgres -- test -x "$parent"; }; then
        parent=/tmp
    fi
    PG_THROWAWAY_DIR="$(mktemp -d "$parent/dsmf-pg.XXXXXX")"
    if is_root; then chown postgres: "$PG_THROWAWAY_DIR"; fi
    local data="$PG_THROWAWAY_DIR/data" logf="$PG_THROWAWAY_DIR/server.log"

    if ! _pg_as_owner "$_PG_BINDIR/initdb" -D "$data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$PG_THROWAWAY_DIR/initdb.log" 2>&1; then
        tail -n 20 "$PG_THROWAWAY_DIR/initdb.log" >&2
        die "initdb failed"
    fi

    # Settings for every start attempt (later settings win, so appending is
    # enough).  The port goes on the command line so a retry only changes that.
    # shellcheck disable=SC2016  # $1 is expanded by the inner sh
    _pg_as_owner sh -c 'cat >>"$1"' sh "$data/postgresql.conf" <<EOF

# --- throwaway test cluster (scripts/lib.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_THROWAWAY_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    local attempt port=""
    for attempt in 1 2 3; do
        port="$(free_port)"
        if _pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$data" -l "$logf" -o "-p $port" -w -t 60 start \
            >/dev/null 2>&1; then
            break
        fi
        warn "PostgreSQL did not start on port $port (attempt $attempt):"
        tail -n 5 "$logf" >&2 2>/dev/null || true
        port=""
    done
    [ -n "$port" ] || die "could not start the throwaway PostgreSQL cluster (log: $logf)"

    local createdb="$_PG_BINDIR/createdb"
    [ -x "$createdb" ] || createdb="createdb"
    "$createdb" -h 127.0.0.1 -p "$port" -U postgres dsmf_test \
        || die "could not create database dsmf_test on the throwaway cluster"
    # shellcheck disable=SC2034  # read by scripts/test
    PG_THROWAWAY_URL="postgresql+psycopg://postgres@127.0.0.1:$port/dsmf_test"
    log "throwaway PostgreSQL $("$_PG_BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

pg_throwaway_stop() {
    [ -n "$PG_THROWAWAY_DIR" ] && [ -d "$PG_THROWAWAY_DIR" ] || return 0
    if [ -f "$PG_THROWAWAY_DIR/data/postmaster.pid" ]; then
        _pg_as_owner "$_PG_BINDIR/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -m immediate -w -t 30 stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_THROWAWAY_DIR"
    PG_THROWAWAY_DIR=""
}
