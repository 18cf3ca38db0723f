#!/usr/bin/env bash
# Installs what Bund's external-client tests need, idempotently, on a fresh Debian machine
# (as root, with only the package registries reachable: PyPI, Maven Central, Debian):
#   - a JDK (java >= 17, with the source launcher) and Maven, from Debian if missing;
#   - a Python venv at $BUND_CACHE/venv with the ADBC Flight SQL driver and pyarrow (pinned);
#   - the Flight SQL JDBC driver (a self-contained uber-jar) in $BUND_CACHE/jdbc, via Maven;
#   - PostgreSQL and MariaDB server binaries (Debian packages), for the database sources;
#   - HAProxy (Debian package), the load balancer in front of replicas in the cluster tests,
#     and curl (the HTTP client of its health checks' tests).
# Writes $BUND_CACHE/env.sh exporting BUND_TEST_PYTHON and BUND_TEST_JDBC_JAR and prints the
# same export lines. BUND_CACHE defaults to <repo>/.cache.
#
# Overrides: BUND_PYTHON (interpreter that creates the venv, default python3),
#            BUND_JDBC_VERSION (flight-sql-jdbc-driver version, default below).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUND_CACHE="${BUND_CACHE:-$REPO/.cache}"
PYTHON="${BUND_PYTHON:-python3}"
# 19.0.0 of flight-sql-jdbc-driver is not on Maven Central (the other arrow-java 19.0.0
# artifacts are); 18.3.0 is, as a shaded uber-jar built for Java 11+ (class files v55).
JDBC_VERSION="${BUND_JDBC_VERSION:-18.3.0}"
PY_PINS=(pyarrow==26.0.1 adbc-driver-flightsql==1.13.0 adbc-driver-manager==1.13.0)
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

log() { echo "test-deps: $*" >&2; }

mkdir -p "$BUND_CACHE"
BUND_CACHE="$(cd "$BUND_CACHE" && pwd)"

# ---------------------------------------------------------------- Debian packages
APT_UPDATED=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "need $* but apt-get is not available; install it by hand"
        exit 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

java_major() {
    # "openjdk version "17.0.15" 2025-04-15" -> 17; "1.8.0_x" -> 8
    local v
    v="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
    case "$v" in
        1.*) echo "${v#1.}" | cut -d. -f1 ;;
        *) echo "$v" | cut -d. -f1 | cut -d- -f1 ;;
    esac
}

# java with the single-file source launcher (needs a JDK: jdk.compiler), version >= 17
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null \
    || ! java --list-modules 2>/dev/null | grep '^jdk.compiler@' >/dev/null; then
    apt_install default-jdk-headless
fi
command -v mvn >/dev/null 2>&1 || apt_install maven

# python3 -m venv needs ensurepip, which Debian ships in python3-venv
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-venv
    PYTHON=python3
fi

# ---------------------------------------------------------------- Python venv
VENV="$BUND_CACHE/venv"
VPY="$VENV/bin/python"
venv_ok() {
    [ -x "$VPY" ] && "$VPY" - "${PY_PINS[@]}" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
import adbc_driver_flightsql.dbapi  # noqa: F401  (loads the driver's shared library)
import pyarrow.flight  # noqa: F401
EOF
}

if venv_ok; then
    log "venv ok: $VENV"
else
    if [ ! -x "$VPY" ] || ! "$VPY" -m pip --version >/dev/null 2>&1; then
        rm -rf "$VENV"
        if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
            rm -rf "$VENV"
            # Debian's python3 without python3-venv (ensurepip missing)
            pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt_install python3-venv "python${pyver}-venv" || apt_install python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    log "pip install ${PY_PINS[*]}"
    "$VPY" -m pip install -q --disable-pip-version-check "${PY_PINS[@]}"
    venv_ok || { log "venv at $VENV still lacks ${PY_PINS[*]}"; exit 1; }
fi

# ---------------------------------------------------------------- JDBC driver
JDBC_DIR="$BUND_CACHE/jdbc"
JAR="$JDBC_DIR/flight-sql-jdbc-driver-$JDBC_VERSION.jar"
jar_ok() {
    [ -s "$JAR" ] && "$VPY" - "$JAR" <<'EOF' 2>/dev/null
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
sys.exit(0 if "org/apache/arrow/driver/jdbc/ArrowFlightJdbcDriver.class" in names else 1)
EOF
}
if jar_ok; then
    log "JDBC driver ok: $JAR"
else
    mkdir -p "$JDBC_DIR"
    rm -f "$JAR"
    log "mvn dependency:copy org.apache.arrow:flight-sql-jdbc-driver:$JDBC_VERSION"
    # copy with -Dartifact needs no pom; the driver is a shaded uber-jar, so one file is all.
    # maven prints errors on stdout (and stray colour codes even with -q): keep its output
    # in a log and show it only when it fails
    if ! (cd "$JDBC_DIR" && mvn -q -B "$DEP_PLUGIN:copy" \
        -Dartifact="org.apache.arrow:flight-sql-jdbc-driver:$JDBC_VERSION" \
        -DoutputDirectory="$JDBC_DIR" -Dmdep.overWriteReleases=true) >"$JDBC_DIR/mvn.log" 2>&1; then
        cat "$JDBC_DIR/mvn.log" >&2
        log "mvn failed (see above)"
        exit 1
    fi
    jar_ok || { log "maven did not produce a usable $JAR"; exit 1; }
fi

# ---------------------------------------------------------------- S3-compatible storage
# SeaweedFS (Apache-2.0), a real S3-compatible object store, for the s3:// source tests.
# Built from the Go module proxy: its go.mod has replace directives, so `go install` refuses
# it; download the module and build it as the main module instead (about 4 min cold).
WEED_VERSION="${BUND_WEED_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
WEED="$BUND_CACHE/bin/weed-$WEED_VERSION"
if [ -x "$WEED" ] && "$WEED" version >/dev/null 2>&1; then
    log "SeaweedFS ok: $WEED"
else
    command -v go >/dev/null 2>&1 || apt_install golang-go
    log "building SeaweedFS $WEED_VERSION (go build)"
    src="$(go mod download -json "github.com/seaweedfs/seaweedfs@$WEED_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    [ -d "$src" ] || { log "go mod download of seaweedfs failed"; exit 1; }
    work="$(mktemp -d)"
    cp -r "$src/." "$work" && chmod -R u+w "$work"
    mkdir -p "$BUND_CACHE/bin"
    if ! (cd "$work" && go build -o "$WEED" ./weed) >"$BUND_CACHE/weed-build.log" 2>&1; then
        cat "$BUND_CACHE/weed-build.log" >&2
        rm -rf "$work"
        log "go build of seaweedfs failed (see above)"
        exit 1
    fi
    rm -rf "$work"
fi

# ---------------------------------------------------------------- database servers
# PostgreSQL for the database-source tests: the harness starts its own server (initdb +
# pg_ctl) in a temporary directory on a free port, so only the binaries are needed; the
# Debian package's own service is not started.
pg_bin() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    # the newest /usr/lib/postgresql/N/bin with both programs
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
    done
}
[ -n "$(pg_bin)" ] && command -v psql >/dev/null 2>&1 || apt_install postgresql postgresql-client
PG_BIN="$(pg_bin)"
[ -n "$PG_BIN" ] || { log "PostgreSQL's initdb and pg_ctl not found after installing postgresql"; exit 1; }
log "PostgreSQL ok: $PG_BIN"

# MariaDB for the MySQL/MariaDB source tests: the harness runs mariadb-install-db and
# mariadbd in a temporary directory on a free port, so only the binaries are needed.
mariadbd_path() {
    command -v mariadbd 2>/dev/null || { [ -x /usr/sbin/mariadbd ] && echo /usr/sbin/mariadbd; }
}
if [ -z "$(mariadbd_path)" ] || ! command -v mariadb-install-db >/dev/null 2>&1 \
    || ! command -v mariadb >/dev/null 2>&1; then
    # the package's own service is not wanted: policy-rc.d keeps it from being started
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        installed=0
        apt_install mariadb-server mariadb-client && installed=1
        rm -f /usr/sbin/policy-rc.d
        [ "$installed" = 1 ] || { log "apt-get install mariadb-server failed"; exit 1; }
    else
        apt_install mariadb-server mariadb-client
    fi
fi
MARIADBD="$(mariadbd_path)"
[ -n "$MARIADBD" ] || { log "mariadbd not found after installing mariadb-server"; exit 1; }
log "MariaDB ok: $MARIADBD"

# ---------------------------------------------------------------- load balancer
# HAProxy in front of replicas (tests/tests/e2e/cluster.rs): the harness runs `haproxy -f`
# with a configuration it writes, on free ports; the package's own service is not wanted.
if ! command -v haproxy >/dev/null 2>&1; then
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        installed=0
        apt_install haproxy && installed=1
        rm -f /usr/sbin/policy-rc.d
        [ "$installed" = 1 ] || { log "apt-get install haproxy failed"; exit 1; }
    else
        apt_install haproxy
    fi
fi
HAPROXY="$(command -v haproxy)"
# curl, the HTTP client of the /healthz tests
command -v curl >/dev/null 2>&1 || apt_install curl
[ -n "$HAPROXY" ] || { log "haproxy not found after installing it"; exit 1; }
log "HAProxy ok: $HAPROXY"

# ---------------------------------------------------------------- env.sh
cat >"$BUND_CACHE/env.sh" <<EOF
# written by scripts/test-deps.sh
export BUND_TEST_PYTHON="$VPY"
export BUND_TEST_JDBC_JAR="$JAR"
export BUND_TEST_WEED="$WEED"
export BUND_TEST_PG_BIN="$PG_BIN"
export BUND_TEST_MARIADBD="$MARIADBD"
export BUND_TEST_HAPROXY="$HAPROXY"
EOF
cat "$BUND_CACHE/env.sh" | grep '^export'
