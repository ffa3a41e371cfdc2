#!/usr/bin/env bash
# services.sh: install, start and stop the real servers Kalla's tests talk to.
#
#   bash scripts/services.sh start    install if needed, start, wait until ready
#   bash scripts/services.sh env      print the export lines the tests read
#   bash scripts/services.sh status   exit 0 when all three services answer
#   bash scripts/services.sh stop     stop only what `start` started
#
# Services:
#   PostgreSQL  the Debian cluster (pg_ctlcluster), role kalla_test, 127.0.0.1:5432
#   MariaDB     a private mariadbd with its datadir in the state dir, 127.0.0.1:3306
#   S3          versitygw (posix backend over a folder in the state dir), 127.0.0.1:7070
#   Spark       Apache Spark 4.0.1 from
#               PyPI's pyspark in a venv under ~/.cache/kalla: a standalone master (127.0.0.1:7077),
#               two workers (1 core, 2 GiB each) and a Spark Connect server on 127.0.0.1:15002,
#               with the PostgreSQL/MariaDB JDBC drivers and hadoop-aws from Maven Central and
#               s3a pointed at the local S3 server. Web UIs are off.
#
# Everything `start` starts is recorded in the state dir
# (${KALLA_SERVICES_DIR:-/tmp/kalla-services}); `stop` stops only those things, so a
# PostgreSQL or MariaDB that was running before is left alone.
#
# Knobs (environment): KALLA_SPARK (0 leaves Spark out of start/status/env), KALLA_SPARK_PORT (15002),
# KALLA_SERVICES_DIR, KALLA_S3_PORT (7070), KALLA_MYSQL_PORT (3306),
# KALLA_TEST_PASSWORD, KALLA_S3_ACCESS_KEY, KALLA_S3_SECRET_KEY.
# Needs root (or sudo) the first time, to apt-get install postgresql, mariadb-server and
# chromium (the browser the web UI's tests drive), and openjdk-17-jre-headless for Spark.
set -euo pipefail

STATE_DIR=${KALLA_SERVICES_DIR:-/tmp/kalla-services}
TEST_USER=kalla_test
TEST_PASSWORD=${KALLA_TEST_PASSWORD:-kalla_test_pw}
MYSQL_PORT=${KALLA_MYSQL_PORT:-3306}
S3_PORT=${KALLA_S3_PORT:-7070}
S3_ACCESS_KEY=${KALLA_S3_ACCESS_KEY:-kallatestaccess}
S3_SECRET_KEY=${KALLA_S3_SECRET_KEY:-kallatestsecret}
S3_REGION=us-east-1
VERSITYGW_VERSION=v1.8.0

SPARK_VERSION=4.0.1
SPARK_PORT=${KALLA_SPARK_PORT:-15002}
SPARK_MASTER_PORT=7077
# Maven coordinates the Connect server loads (Ivy fetches them once into its cache). hadoop-aws must
# match the Hadoop client jars in pyspark 4.0.1 (3.4.1); it pulls the AWS SDK bundle it was built with
# (software.amazon.awssdk:bundle:2.24.6).
SPARK_PACKAGES=org.postgresql:postgresql:42.7.4,org.mariadb.jdbc:mariadb-java-client:3.5.1,org.apache.hadoop:hadoop-aws:3.4.1
SPARK_VENV=${XDG_CACHE_HOME:-$HOME/.cache}/kalla/spark-$SPARK_VERSION-venv
SPARK_DIR=$STATE_DIR/spark
SPARK_IVY=${XDG_CACHE_HOME:-$HOME/.cache}/kalla/spark-ivy # the jars, fetched once

MYSQL_DATADIR=$STATE_DIR/mysql/data
MYSQL_SOCKET=$STATE_DIR/mysql/mysqld.sock
MYSQL_PIDFILE=$STATE_DIR/mysql/mysqld.pid
MYSQL_LOG=$STATE_DIR/mysql/mysqld.log
S3_DIR=$STATE_DIR/s3/data
S3_PIDFILE=$STATE_DIR/s3/versitygw.pid
S3_LOG=$STATE_DIR/s3/versitygw.log
PG_STARTED=$STATE_DIR/postgres.started # "VERSION CLUSTER" of a cluster start started
PG_PORTFILE=$STATE_DIR/postgres.port

log() { printf 'services: %s\n' "$*" >&2; }
die() {
	printf 'services: ERROR: %s\n' "$*" >&2
	exit 1
}

# as_root runs a command as root, through sudo when this script is not root.
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# as_postgres runs a command as the postgres OS user (peer auth on the local socket).
as_postgres() {
	if [[ $(id -un) == postgres ]]; then
		(cd / && "$@")
	elif [[ $(id -u) -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && sudo -u postgres "$@")
	fi
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# pid_alive PIDFILE NAME: true when PIDFILE names a live process whose command is NAME.
pid_alive() {
	local pid comm
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	comm=$(ps -o comm= -p "$pid" 2>/dev/null) || return 1
	[[ $comm == "$2"* ]]
}

# kill_pidfile PIDFILE NAME: TERM the process, wait up to 30 s, then KILL.
kill_pidfile() {
	local pidfile=$1 name=$2 pid i
	if ! pid_alive "$pidfile" "$name"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(<"$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) did not stop in 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

gobin() {
	local b
	b=$(go env GOBIN)
	[[ -n $b ]] || b=$(go env GOPATH)/bin
	printf '%s\n' "$b"
}

# ---------------------------------------------------------------- install

pg_version() {
	# Highest installed PostgreSQL major version, empty when none.
	local d best=""
	for d in /usr/lib/postgresql/*/bin/postgres; do
		[[ -x $d ]] || continue
		d=${d#/usr/lib/postgresql/}
		d=${d%%/*}
		if [[ -z $best ]] || ((d > best)); then best=$d; fi
	done
	printf '%s\n' "$best"
}

mariadbd_bin() {
	local c
	for c in /usr/sbin/mariadbd /usr/sbin/mysqld /usr/bin/mariadbd; do
		[[ -x $c ]] && {
			printf '%s\n' "$c"
			return 0
		}
	done
	command -v mariadbd 2>/dev/null || true
}

install_packages() {
	local pkgs=()
	if [[ -z $(pg_version) ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
		pkgs+=(postgresql)
	fi
	if [[ -z $(mariadbd_bin) ]] || ! command -v mariadb-install-db >/dev/null 2>&1 ||
		! command -v mariadb >/dev/null 2>&1; then
		pkgs+=(mariadb-server mariadb-client)
	fi
	# Headless Chromium for the web UI's browser tests (internal/ui).
	if [[ ! -x /usr/bin/chromium ]]; then
		pkgs+=(chromium)
	fi
	# Java 17 for Spark, in the same apt-get run (two apt-gets cannot run at once).
	if spark_enabled && ! command -v java >/dev/null 2>&1; then
		pkgs+=(openjdk-17-jre-headless)
	fi
	((${#pkgs[@]})) || return 0
	command -v apt-get >/dev/null 2>&1 || die "missing ${pkgs[*]} and no apt-get to install them"
	log "installing ${pkgs[*]} (apt-get)"
	local t0=$SECONDS
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${pkgs[@]}" >"$STATE_DIR/apt.log" 2>&1 ||
		{
			tail -n 30 "$STATE_DIR/apt.log" >&2
			die "apt-get install ${pkgs[*]} failed (log: $STATE_DIR/apt.log)"
		}
	log "installed ${pkgs[*]} in $((SECONDS - t0)) s"
}

install_versitygw() {
	local bin
	bin=$(gobin)/versitygw
	[[ -x $bin ]] && return 0
	command -v go >/dev/null 2>&1 || die "go is not on PATH; needed to install versitygw"
	log "installing versitygw $VERSITYGW_VERSION (go install, about a minute)"
	local t0=$SECONDS
	(cd / && GOFLAGS='' go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") \
		>"$STATE_DIR/go-install.log" 2>&1 ||
		{
			tail -n 30 "$STATE_DIR/go-install.log" >&2
			die "go install versitygw failed (log: $STATE_DIR/go-install.log)"
		}
	[[ -x $bin ]] || die "versitygw not found at $bin after go install"
	log "installed versitygw in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- PostgreSQL

# pg_cluster prints "VERSION NAME PORT STATUS" of the cluster to use.
pg_cluster() {
	local ver
	ver=$(pg_version)
	[[ -n $ver ]] || die "PostgreSQL is not installed"
	# Prefer cluster "main" of the newest version, else any cluster of that version.
	pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '
		$1 == v && $2 == "main" { print $1, $2, $3, $4; found = 1; exit }
		$1 == v && !any { any = $1 " " $2 " " $3 " " $4 }
		END { if (!found && any) print any }'
}

start_postgres() {
	local ver name port status line
	line=$(pg_cluster)
	if [[ -z $line ]]; then
		ver=$(pg_version)
		log "creating PostgreSQL $ver cluster main"
		as_root pg_createcluster "$ver" main >/dev/null || die "pg_createcluster $ver main failed"
		line=$(pg_cluster)
	fi
	read -r ver name port status <<<"$line"
	local conf=/etc/postgresql/$ver/$name
	local hba=$conf/pg_hba.conf

	# Password auth over TCP on 127.0.0.1 (Debian's default already has it; make sure).
	if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+(all|kalla_test)[[:space:]]+127\.0\.0\.1/32[[:space:]]+(md5|scram-sha-256)' "$hba"; then
		log "adding a scram-sha-256 line for 127.0.0.1 to $hba"
		as_root sed -i '1i host all kalla_test 127.0.0.1/32 scram-sha-256 # added by kalla scripts/services.sh' "$hba"
		[[ $status == online ]] && as_root pg_ctlcluster "$ver" "$name" reload
	fi

	if [[ $status == online* ]]; then
		log "PostgreSQL $ver/$name already running on port $port"
	else
		log "starting PostgreSQL $ver/$name"
		as_root pg_ctlcluster "$ver" "$name" start ||
			die "pg_ctlcluster $ver $name start failed; see /var/log/postgresql/postgresql-$ver-$name.log"
		printf '%s %s\n' "$ver" "$name" >"$PG_STARTED"
	fi
	printf '%s\n' "$port" >"$PG_PORTFILE"

	local i
	for ((i = 0; i < 300; i++)); do
		pg_isready -q -h 127.0.0.1 -p "$port" && break
		sleep 0.1
	done
	pg_isready -q -h 127.0.0.1 -p "$port" ||
		die "PostgreSQL not ready on 127.0.0.1:$port after 30 s; see /var/log/postgresql/postgresql-$ver-$name.log"

	as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres \
		-v user="$TEST_USER" -v pw="$TEST_PASSWORD" >/dev/null <<-'SQL' || die "could not create PostgreSQL role kalla_test"
		SELECT format('CREATE ROLE %I', :'user')
		  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
		ALTER ROLE :"user" WITH LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD :'pw';
	SQL
	PGPASSWORD=$TEST_PASSWORD psql -X -q -h 127.0.0.1 -p "$port" -U "$TEST_USER" -d postgres \
		-c 'SELECT 1' >/dev/null || die "kalla_test cannot log in to PostgreSQL over 127.0.0.1:$port"
	log "PostgreSQL ready on 127.0.0.1:$port"
}

stop_postgres() {
	[[ -s $PG_STARTED ]] || return 0
	local ver name
	read -r ver name <"$PG_STARTED"
	log "stopping PostgreSQL $ver/$name"
	as_root pg_ctlcluster "$ver" "$name" stop -m fast || log "pg_ctlcluster stop failed (already stopped?)"
	rm -f "$PG_STARTED"
}

# ---------------------------------------------------------------- MariaDB

mysql_root() { mariadb --no-defaults --protocol=socket --socket="$MYSQL_SOCKET" -uroot "$@"; }

mysql_create_user() {
	# stdin of "$@" is SQL; "$@" is a client command running as an admin.
	"$@" <<-SQL
		CREATE USER IF NOT EXISTS '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
		CREATE USER IF NOT EXISTS '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
		ALTER USER '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASSWORD';
		ALTER USER '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASSWORD';
		GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'127.0.0.1' WITH GRANT OPTION;
		GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'localhost' WITH GRANT OPTION;
		FLUSH PRIVILEGES;
	SQL
}

mysql_tcp_ok() {
	MYSQL_PWD=$TEST_PASSWORD mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" \
		-u "$TEST_USER" -e 'SELECT 1' >/dev/null 2>&1
}

start_mysql() {
	local bin
	bin=$(mariadbd_bin)
	[[ -n $bin ]] || die "mariadbd not found"
	mkdir -p "$STATE_DIR/mysql"

	if pid_alive "$MYSQL_PIDFILE" "$(basename "$bin")" || pid_alive "$MYSQL_PIDFILE" mariadbd || pid_alive "$MYSQL_PIDFILE" mysqld; then
		log "MariaDB (ours, pid $(<"$MYSQL_PIDFILE")) already running"
	elif port_open 127.0.0.1 "$MYSQL_PORT"; then
		# Someone else's server on the port: use it if we can, never stop it.
		log "a MySQL/MariaDB server not started by this script is on 127.0.0.1:$MYSQL_PORT; using it"
		if ! mysql_tcp_ok; then
			mysql_create_user mariadb -uroot >/dev/null 2>&1 ||
				die "port $MYSQL_PORT is taken by a server where user $TEST_USER cannot log in and root cannot create it; stop it or set KALLA_MYSQL_PORT"
		fi
		mysql_tcp_ok || die "user $TEST_USER cannot log in to the server on 127.0.0.1:$MYSQL_PORT"
		log "MariaDB ready on 127.0.0.1:$MYSQL_PORT (pre-existing server)"
		return 0
	else
		local owner=mysql
		id mysql >/dev/null 2>&1 || owner=$(id -un)
		if [[ ! -d $MYSQL_DATADIR/mysql ]]; then
			log "initialising MariaDB datadir $MYSQL_DATADIR"
			rm -rf "$MYSQL_DATADIR"
			mkdir -p "$MYSQL_DATADIR"
			chown "$owner" "$MYSQL_DATADIR" "$STATE_DIR/mysql"
			mariadb-install-db --no-defaults --user="$owner" --datadir="$MYSQL_DATADIR" \
				--auth-root-authentication-method=socket --skip-test-db \
				>"$STATE_DIR/mysql/install.log" 2>&1 ||
				{
					tail -n 30 "$STATE_DIR/mysql/install.log" >&2
					die "mariadb-install-db failed (log: $STATE_DIR/mysql/install.log)"
				}
		fi
		chown -R "$owner" "$MYSQL_DATADIR" "$STATE_DIR/mysql"
		rm -f "$MYSQL_PIDFILE"
		log "starting MariaDB ($bin) on 127.0.0.1:$MYSQL_PORT"
		# Started directly (no init system in containers): setsid detaches it from this
		# shell so it outlives the script; its pid file is how `stop` finds it.
		setsid "$bin" --no-defaults --user="$owner" \
			--datadir="$MYSQL_DATADIR" --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_PIDFILE" \
			--log-error="$MYSQL_LOG" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
			--skip-name-resolve --skip-log-bin --max-connections=500 \
			--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
			--default-time-zone=+00:00 --innodb-buffer-pool-size=256M \
			--innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
			</dev/null >>"$MYSQL_LOG" 2>&1 &
	fi

	local i
	for ((i = 0; i < 600; i++)); do
		[[ -S $MYSQL_SOCKET ]] && mariadb-admin --no-defaults --protocol=socket --socket="$MYSQL_SOCKET" \
			-uroot ping >/dev/null 2>&1 && break
		if ((i > 10)) && [[ -s $MYSQL_PIDFILE ]] && ! kill -0 "$(<"$MYSQL_PIDFILE")" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if ! mariadb-admin --no-defaults --protocol=socket --socket="$MYSQL_SOCKET" -uroot ping >/dev/null 2>&1; then
		tail -n 30 "$MYSQL_LOG" >&2 || true
		die "MariaDB did not become ready in 60 s (log: $MYSQL_LOG)"
	fi
	mysql_create_user mysql_root || die "could not create MariaDB user $TEST_USER"
	mysql_tcp_ok || die "user $TEST_USER cannot log in to MariaDB over 127.0.0.1:$MYSQL_PORT"
	log "MariaDB ready on 127.0.0.1:$MYSQL_PORT"
}

stop_mysql() {
	local n
	for n in mariadbd mysqld; do
		if pid_alive "$MYSQL_PIDFILE" "$n"; then
			log "stopping MariaDB (pid $(<"$MYSQL_PIDFILE"))"
			kill_pidfile "$MYSQL_PIDFILE" "$n"
			return 0
		fi
	done
	rm -f "$MYSQL_PIDFILE"
}

# ---------------------------------------------------------------- S3 (versitygw)

start_s3() {
	mkdir -p "$S3_DIR"
	if pid_alive "$S3_PIDFILE" versitygw; then
		log "versitygw (ours, pid $(<"$S3_PIDFILE")) already running"
	elif port_open 127.0.0.1 "$S3_PORT"; then
		die "port 127.0.0.1:$S3_PORT is taken by something this script did not start; stop it or set KALLA_S3_PORT"
	else
		local bin
		bin=$(gobin)/versitygw
		log "starting versitygw on 127.0.0.1:$S3_PORT"
		# The child writes its own pid, then execs versitygw (same pid).
		# shellcheck disable=SC2016 # expanded by the child shell
		setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$S3_PIDFILE" \
			env ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
			"$bin" --port "127.0.0.1:$S3_PORT" posix "$S3_DIR" \
			</dev/null >>"$S3_LOG" 2>&1 &
	fi
	local i
	for ((i = 0; i < 300; i++)); do
		port_open 127.0.0.1 "$S3_PORT" && break
		if ((i > 10)) && ! pid_alive "$S3_PIDFILE" versitygw; then break; fi
		sleep 0.1
	done
	if ! port_open 127.0.0.1 "$S3_PORT"; then
		tail -n 30 "$S3_LOG" >&2 || true
		die "versitygw did not listen on 127.0.0.1:$S3_PORT within 30 s (log: $S3_LOG)"
	fi
	log "S3 (versitygw) ready on http://127.0.0.1:$S3_PORT"
}

stop_s3() {
	if pid_alive "$S3_PIDFILE" versitygw; then
		log "stopping versitygw (pid $(<"$S3_PIDFILE"))"
	fi
	kill_pidfile "$S3_PIDFILE" versitygw
}

# ---------------------------------------------------------------- Spark

# spark_enabled: Spark is part of start/status/env unless KALLA_SPARK=0.
spark_enabled() { [[ ${KALLA_SPARK:-1} != 0 ]]; }

spark_home() {
	local py
	py=$(ls -d "$SPARK_VENV"/lib/python3*/site-packages/pyspark 2>/dev/null | head -n 1)
	printf '%s\n' "$py"
}

# install_spark installs pyspark (Spark itself, about 400 MB from PyPI) into its venv.
# It needs no Java (install_packages brings it), so it runs while apt-get does.
install_spark() {
	if [[ -n $(spark_home) && -x $(spark_home)/bin/spark-submit ]] &&
		"$SPARK_VENV/bin/pip" show pyspark 2>/dev/null | grep -qx "Version: $SPARK_VERSION"; then
		return 0
	fi
	log "installing pyspark==$SPARK_VERSION into $SPARK_VENV (pip, 1-2 min)"
	local t0=$SECONDS
	python3 -m venv "$SPARK_VENV" || die "python3 -m venv $SPARK_VENV failed"
	"$SPARK_VENV/bin/pip" install -q "pyspark==$SPARK_VERSION" >"$STATE_DIR/pip-spark.log" 2>&1 ||
		{
			tail -n 30 "$STATE_DIR/pip-spark.log" >&2
			die "pip install pyspark==$SPARK_VERSION failed (log: $STATE_DIR/pip-spark.log)"
		}
	[[ -x $(spark_home)/bin/spark-submit ]] || die "no bin/spark-submit in $(spark_home)"
	log "installed pyspark in $((SECONDS - t0)) s"
}

# spark_daemon NAME PORT ARGS...: start a Spark JVM detached, record its pid, wait for PORT.
spark_daemon() {
	local name=$1 port=$2
	shift 2
	local pidfile=$SPARK_DIR/$name.pid logf=$SPARK_DIR/$name.log
	if pid_alive "$pidfile" java; then
		log "Spark $name (ours, pid $(<"$pidfile")) already running"
	elif port_open 127.0.0.1 "$port"; then
		die "port 127.0.0.1:$port is taken by something this script did not start (wanted for Spark $name)"
	else
		log "starting Spark $name on 127.0.0.1:$port"
		# shellcheck disable=SC2016 # expanded by the child shell
		setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" \
			env SPARK_HOME="$(spark_home)" SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-1g}" SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS="$SPARK_DIR/tmp" \
			SPARK_LOG_DIR="$SPARK_DIR" SPARK_WORKER_DIR="$SPARK_DIR/work" \
			SPARK_CONF_DIR="$SPARK_DIR/conf" "$@" </dev/null >>"$logf" 2>&1 &
	fi
	local i
	for ((i = 0; i < 1800; i++)); do
		port_open 127.0.0.1 "$port" && break
		if ((i > 20)) && ! pid_alive "$pidfile" java; then break; fi
		sleep 0.1
	done
	if ! port_open 127.0.0.1 "$port"; then
		tail -n 30 "$logf" >&2 || true
		die "Spark $name did not listen on 127.0.0.1:$port within 180 s (log: $logf)"
	fi
}

start_spark() {
	install_spark
	command -v java >/dev/null 2>&1 || die "Spark needs Java 17 (java is not on PATH)"
	local home
	home=$(spark_home)
	# Nothing of Spark running (a crash, a machine restart): what the last cluster left is
	# nobody's now (see stop_spark).
	local n alive=0
	for n in connect worker2 worker1 master; do
		pid_alive "$SPARK_DIR/$n.pid" java && alive=1
	done
	((alive)) || rm -rf "$SPARK_DIR/work" "$SPARK_DIR/tmp"
	mkdir -p "$SPARK_DIR/tmp" "$SPARK_DIR/work" "$SPARK_DIR/conf" "$SPARK_DIR/events"
	# Small JVMs: the master and workers need little; executors get 1 core and 1 GiB of each
	# worker's 2 GiB; the Connect server (the driver) 1 GiB.
	rm -f "$SPARK_DIR/conf/spark-env.sh"
	local cls=$home/bin/spark-class
	SPARK_DAEMON_MEMORY=256m spark_daemon master "$SPARK_MASTER_PORT" "$cls" org.apache.spark.deploy.master.Master \
		--host 127.0.0.1 --port "$SPARK_MASTER_PORT" --webui-port 0
	# The workers and the Connect server start at once: the Connect server's first start is
	# mostly Ivy downloading its jars, and it takes executors from workers that join later.
	local w pids=() p rc=0
	for w in 1 2; do
		SPARK_DAEMON_MEMORY=256m spark_daemon "worker$w" "$((17080 + w))" "$cls" org.apache.spark.deploy.worker.Worker \
			--host 127.0.0.1 --port "$((17080 + w))" --webui-port 0 --cores 1 --memory 2g \
			--work-dir "$SPARK_DIR/work/$w" \
			"spark://127.0.0.1:$SPARK_MASTER_PORT" &
		pids+=($!)
	done
	start_spark_connect "$home" &
	pids+=($!)
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	((rc == 0)) || die "a Spark daemon did not start (logs: $SPARK_DIR/*.log)"
	# A worker is ready once the master has accepted it (its log says so).
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q 'Successfully registered with master' "$SPARK_DIR/worker1.log" 2>/dev/null &&
			grep -q 'Successfully registered with master' "$SPARK_DIR/worker2.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'Successfully registered with master' "$SPARK_DIR/worker1.log" 2>/dev/null &&
		grep -q 'Successfully registered with master' "$SPARK_DIR/worker2.log" 2>/dev/null ||
		die "Spark workers did not register with the master in 120 s (logs: $SPARK_DIR/worker*.log)"
	log "Spark Connect ready on sc://127.0.0.1:$SPARK_PORT (master spark://127.0.0.1:$SPARK_MASTER_PORT)"
}

# start_spark_connect HOME: the Spark Connect server (the driver), pointed at the master and at
# the local S3 server; its first start fetches the JDBC drivers and hadoop-aws with Ivy.
# The driver keeps every statement's plan text for its SQL status store (even with the UI off),
# the last spark.sql.ui.retainedExecutions of them across all sessions: 1000 by default, and a
# rules run's stacked plans printed over 1 MB each (Dec 3), which ran the 1 GiB driver out of
# heap in a test suite. Kalla's sessions cap the texts at 64 KiB; 200 bounds what older clients
# or other tools leave. The driver keeps 1 GiB: with
# Kalla's fixes (capped texts, no session clone per cached table, a cleanup that finishes) the
# default rules scenarios ran two at a time within it (Dec 3).
start_spark_connect() {
	local home=$1
	spark_daemon connect "$SPARK_PORT" "$home/bin/spark-submit" \
		--class org.apache.spark.sql.connect.service.SparkConnectServer \
		--name kalla-spark-connect \
		--master "spark://127.0.0.1:$SPARK_MASTER_PORT" \
		--driver-memory 1g --executor-memory 1g --total-executor-cores 2 \
		--packages "$SPARK_PACKAGES" \
		--conf spark.jars.ivy="$SPARK_IVY" \
		--conf spark.ui.enabled=false \
		--conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
		--conf spark.connect.grpc.binding.address=127.0.0.1 \
		--conf spark.connect.grpc.binding.port="$SPARK_PORT" \
		--conf spark.sql.runSQLOnFiles=false \
		--conf spark.sql.shuffle.partitions=4 \
		--conf spark.sql.ui.retainedExecutions=200 \
		--conf spark.hadoop.fs.s3a.endpoint="http://127.0.0.1:$S3_PORT" \
		--conf spark.hadoop.fs.s3a.path.style.access=true \
		--conf spark.hadoop.fs.s3a.connection.ssl.enabled=false \
		--conf spark.hadoop.fs.s3a.endpoint.region="$S3_REGION" \
		--conf spark.hadoop.fs.s3a.access.key="$S3_ACCESS_KEY" \
		--conf spark.hadoop.fs.s3a.secret.key="$S3_SECRET_KEY" \
		spark-internal
}

stop_spark() {
	local n
	for n in connect worker2 worker1 master; do
		if pid_alive "$SPARK_DIR/$n.pid" java; then
			log "stopping Spark $n (pid $(<"$SPARK_DIR/$n.pid"))"
		fi
		kill_pidfile "$SPARK_DIR/$n.pid" java
	done
	# Each executor the cluster started left its own copy of the Connect server's jars
	# (hadoop-aws, the AWS SDK bundle: 550 MB) under work/, and each Connect start 1.1 GB
	# under tmp/, with the shuffle and spill files of its applications: 35 GB on a
	# developer's machine after a few days of suites (Dec 3). Nothing reads them once the
	# cluster is stopped.
	rm -rf "$SPARK_DIR/work" "$SPARK_DIR/tmp"
}

# ---------------------------------------------------------------- commands

cmd_env() {
	local pg_port=5432
	[[ -s $PG_PORTFILE ]] && pg_port=$(<"$PG_PORTFILE")
	cat <<-EOF
		export KALLA_TEST_POSTGRES_URL=postgres://$TEST_USER:$TEST_PASSWORD@127.0.0.1:$pg_port/postgres
		export KALLA_TEST_MYSQL_URL=mysql://$TEST_USER:$TEST_PASSWORD@127.0.0.1:$MYSQL_PORT/mysql
		export KALLA_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
		export KALLA_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
		export KALLA_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
		export KALLA_TEST_S3_REGION=$S3_REGION
	EOF
	if spark_enabled; then
		echo "export KALLA_TEST_SPARK_REMOTE=sc://127.0.0.1:$SPARK_PORT"
	fi
}

cmd_status() {
	local ok=0 pg_port=5432
	[[ -s $PG_PORTFILE ]] && pg_port=$(<"$PG_PORTFILE")
	if PGPASSWORD=$TEST_PASSWORD psql -X -q -h 127.0.0.1 -p "$pg_port" -U "$TEST_USER" -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
		echo "postgres: up (127.0.0.1:$pg_port)"
	else
		echo "postgres: down"
		ok=1
	fi
	if command -v mariadb >/dev/null 2>&1 && mysql_tcp_ok; then
		echo "mysql: up (127.0.0.1:$MYSQL_PORT)"
	else
		echo "mysql: down"
		ok=1
	fi
	if port_open 127.0.0.1 "$S3_PORT"; then
		echo "s3: up (127.0.0.1:$S3_PORT)"
	else
		echo "s3: down"
		ok=1
	fi
	if spark_enabled; then
		if port_open 127.0.0.1 "$SPARK_PORT"; then
			echo "spark: up (sc://127.0.0.1:$SPARK_PORT)"
		else
			echo "spark: down"
			ok=1
		fi
	fi
	return $ok
}

# wait_job PID WHAT: wait for a background job of cmd_start; die when it failed.
wait_job() {
	[[ -n $1 ]] || return 0
	wait "$1" || die "$2 failed"
}

cmd_start() {
	local t0=$SECONDS
	mkdir -p "$STATE_DIR"
	chmod 755 "$STATE_DIR"
	# On a fresh machine the installs run at once: the versitygw build (CPU), apt-get (network,
	# disk) and pip's pyspark download (network); then Spark starts (its Connect server's first
	# start is mostly Ivy's jar download) while versitygw may still be compiling.
	local gw_pid="" pip_pid="" spark_pid="" rc_apt=0
	if [[ ! -x $(gobin)/versitygw ]]; then
		install_versitygw &
		gw_pid=$!
	fi
	if spark_enabled; then
		install_spark &
		pip_pid=$!
	fi
	(install_packages) || rc_apt=$?
	if ((rc_apt != 0)); then
		wait_job "$pip_pid" "installing pyspark"
		wait_job "$gw_pid" "installing versitygw"
		die "installing the database servers failed"
	fi
	start_postgres
	start_mysql
	if spark_enabled; then
		wait_job "$pip_pid" "installing pyspark"
		start_spark &
		spark_pid=$!
	fi
	wait_job "$gw_pid" "installing versitygw"
	start_s3
	wait_job "$spark_pid" "starting Spark"
	log "all services ready in $((SECONDS - t0)) s; state in $STATE_DIR"
}

cmd_stop() {
	[[ -d $STATE_DIR ]] || return 0
	stop_spark
	stop_s3
	stop_mysql
	stop_postgres
	log "stopped what start had started"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
status) cmd_status ;;
*)
	echo "usage: $0 start|stop|env|status" >&2
	exit 2
	;;
esac
