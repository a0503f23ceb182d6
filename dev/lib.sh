# dev/lib.sh
#	  Shell functions shared by dev/test and dev/sandbox. Sourced, never run.
#
# PostgreSQL refuses to run as root. So when these scripts run as root (as CI
# does), the build, the simulator and every PostgreSQL program run as the
# unprivileged "postgres" user, in a copy of the tree that this user owns: the
# checkout itself may sit under /root, where postgres cannot read. Installing
# the built extension is the one step done as root (or through sudo). Nothing
# here writes into the checkout.
#
# Settings read from the environment:
#   PG_CONFIG       pg_config to build and test with (default: pg_config)
#   SG_SIM_TOKEN    token the simulator accepts (default: sim-token, which the
#                   regression tests rely on)
#   SG_TIMEOUT_SIM  seconds to wait for the simulator's ready file (default 30)
#
# Set by sg_init and the functions below:
#   SG_ROOT         the checkout
#   SG_RUNNER       user that runs PostgreSQL: postgres when root, else you
#   SG_BINDIR       PostgreSQL's bindir (initdb, pg_ctl, psql)
#   SG_SIM_DIR, SG_SIM_PID, SG_SIM_BASE_URL, SG_SIM_CONTROL_URL, SG_TOKEN_FILE,
#   SWITCHGRID_SIM_READY (exported: test/sim/simctl.py reads it)
#   SG_PGDATA, SG_PGLOG, and PGHOST, PGPORT, PGUSER, PGDATABASE (exported)
#
# Functions are prefixed sg_; each states what it needs and what it sets.
# Call them from a current directory the runner can enter (initdb and
# postgres complain otherwise): the scripts cd to their work directory.

SG_PROG=${SG_PROG:-dev}
SG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SG_SIM_TOKEN=${SG_SIM_TOKEN:-sim-token}
SG_TIMEOUT_SIM=${SG_TIMEOUT_SIM:-30}
SG_UID=$(id -u)

sg_msg()
{
	printf '%s: %s\n' "$SG_PROG" "$*" >&2
}

sg_die()
{
	sg_msg "$*"
	exit 1
}

sg_is_root()
{
	[ "$SG_UID" -eq 0 ]
}

# sg_init: find PostgreSQL (after dev/setup has run) and decide who runs it.
sg_init()
{
	local pgc=${PG_CONFIG:-pg_config}

	PG_CONFIG=$(command -v "$pgc") || sg_die "cannot find $pgc (run dev/setup, or set PG_CONFIG)"
	export PG_CONFIG
	SG_BINDIR=$("$PG_CONFIG" --bindir)
	[ -x "$SG_BINDIR/initdb" ] || sg_die "no initdb in $SG_BINDIR (is the PostgreSQL server package installed?)"

	if sg_is_root; then
		SG_RUNNER=postgres
		id "$SG_RUNNER" >/dev/null 2>&1 || sg_die "user $SG_RUNNER does not exist (run dev/setup)"
		# The runner gets a plain PATH: root's may hold directories (under
		# /root) that postgres cannot enter.
		SG_RUNNER_PATH="$SG_BINDIR:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
	else
		SG_RUNNER=$(id -un)
		SG_RUNNER_PATH="$SG_BINDIR:$PATH"
	fi
}

# sg_as_runner CMD...: run CMD as the runner, in the current directory, with
# the current environment (plus a PATH that starts with PostgreSQL's bindir).
sg_as_runner()
{
	if sg_is_root; then
		runuser -u "$SG_RUNNER" -- env PATH="$SG_RUNNER_PATH" "$@"
	else
		env PATH="$SG_RUNNER_PATH" "$@"
	fi
}

# sg_as_runner_bg CMD...: sg_as_runner in the background. SG_BG_PID is the
# pid of runuser or of CMD itself; a SIGTERM to it reaches CMD either way.
# ("wait" on a background job, unlike a foreground one, lets the scripts'
# signal traps run at once.)
sg_as_runner_bg()
{
	if sg_is_root; then
		runuser -u "$SG_RUNNER" -- env PATH="$SG_RUNNER_PATH" "$@" &
	else
		env PATH="$SG_RUNNER_PATH" "$@" &
	fi
	SG_BG_PID=$!
}

# sg_mkdir_runner DIR: create DIR, mode 0700, owned by the runner (and so are
# any parents it has to create, when the runner can create them itself).
sg_mkdir_runner()
{
	if [ ! -d "$1" ]; then
		if ! sg_is_root || ! sg_as_runner mkdir -p -m 700 "$1" 2>/dev/null; then
			mkdir -p -m 700 "$1"
		fi
	fi
	if sg_is_root; then
		chown "$SG_RUNNER:" "$1"
	fi
	sg_as_runner test -w "$1" -a -x "$1" ||
		sg_die "$SG_RUNNER cannot write to $1 (is a parent directory closed to it?)"
}

# sg_mktemp NAME: print a fresh temporary directory owned by the runner.
sg_mktemp()
{
	local dir

	dir=$(mktemp -d "${TMPDIR:-/tmp}/switchgrid-$1.XXXXXX")
	sg_mkdir_runner "$dir"
	printf '%s\n' "$dir"
}

# sg_copy_tree DEST: copy the checkout into DEST (which the runner owns),
# leaving out .git and every build or test output, so the copy builds from
# scratch. Files that others are editing while we copy are fine to take as
# they are (tar exits 1 for "file changed as we read it").
sg_copy_tree()
{
	local dest=$1

	sg_mkdir_runner "$dest"
	{
		tar -C "$SG_ROOT" -c -f - \
			--warning=no-file-changed --warning=no-file-removed \
			--exclude=./.git --exclude=./.sandbox \
			--exclude=./results --exclude=./tmp_check --exclude=./log \
			--exclude=./regression.diffs --exclude=./regression.out \
			--exclude='*.o' --exclude='*.so' --exclude='*.bc' \
			--exclude=__pycache__ \
			. || [ $? -eq 1 ]
	} | (cd "$dest" && sg_as_runner tar -x -f -)
}

# sg_build DIR: build the extension in DIR as the runner (the Makefile makes
# warnings errors).
sg_build()
{
	(cd "$1" && sg_as_runner make -j"$(nproc)" PG_CONFIG="$PG_CONFIG")
}

# sg_install DIR: "make install" what sg_build built: as root, else directly
# if the runner can write PostgreSQL's directories, else through sudo.
sg_install()
{
	local pkglibdir sharedir

	pkglibdir=$("$PG_CONFIG" --pkglibdir)
	sharedir=$("$PG_CONFIG" --sharedir)
	if sg_is_root || { [ -w "$pkglibdir" ] && [ -w "$sharedir/extension" ]; }; then
		(cd "$1" && make install PG_CONFIG="$PG_CONFIG")
	elif command -v sudo >/dev/null 2>&1; then
		(cd "$1" && sudo make install PG_CONFIG="$PG_CONFIG")
	else
		sg_die "cannot write to $pkglibdir and there is no sudo: run \"make install\" as root"
	fi
}

# sg_free_port: print a TCP port on 127.0.0.1 that was free a moment ago.
sg_free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# sg_pid_alive PID: true if PID runs (a zombie counts as dead: the init of a
# container does not always reap orphans).
sg_pid_alive()
{
	local stat

	[ -n "$1" ] && stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# sg_pid_is_sim PID: true if PID is alive and is a switchgrid simulator (so a
# stale pid file never makes us signal an unrelated process).
sg_pid_is_sim()
{
	sg_pid_alive "$1" &&
		tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q 'switchgrid_sim\.py'
}

# sg_kill_wait PID: SIGTERM, wait up to 10 s, then SIGKILL.
sg_kill_wait()
{
	local pid=$1 i

	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 100); do
		sg_pid_alive "$pid" || return 0
		sleep 0.1
	done
	sg_msg "process $pid ignored SIGTERM, killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# sg_log_tail FILE [LINES]: show the end of a log file, labelled.
sg_log_tail()
{
	[ -s "$1" ] || return 0
	echo "---- last ${2:-40} lines of $1 ----" >&2
	tail -n "${2:-40}" "$1" >&2
	echo "---- end of $1 ----" >&2
}

# sg_sim_start TREE DIR [SIM ARGS...]: start TREE's simulator as the runner,
# detached (setsid), with its files in DIR (token, ready file, log, pid), and
# wait for its ready file with a deadline. The pid goes to
# DIR/switchgrid_sim.pid (sg_sweep looks for that name). Sets SG_SIM_DIR, SG_SIM_PID,
# SG_TOKEN_FILE, SG_SIM_BASE_URL, SG_SIM_CONTROL_URL, SWITCHGRID_SIM_READY.
sg_sim_start()
{
	local tree=$1 dir=$2 deadline
	shift 2

	[ -f "$tree/test/sim/switchgrid_sim.py" ] || sg_die "no simulator at test/sim/switchgrid_sim.py"
	sg_mkdir_runner "$dir"
	SG_SIM_DIR=$dir
	SG_TOKEN_FILE=$dir/token
	SWITCHGRID_SIM_READY=$dir/switchgrid_sim.ready
	export SWITCHGRID_SIM_READY

	# The token file is the runner's, mode 0600, as the server requires.
	sg_as_runner sh -c 'umask 077; printf "%s" "$1" >"$2"' sh "$SG_SIM_TOKEN" "$SG_TOKEN_FILE"
	rm -f "$SWITCHGRID_SIM_READY" "$dir/switchgrid_sim.pid"

	(cd "$tree" && sg_as_runner setsid -f sh -c 'echo $$ >"$1"; shift; exec "$@" </dev/null >"$0" 2>&1' \
		"$dir/sim.log" "$dir/switchgrid_sim.pid" \
		python3 test/sim/switchgrid_sim.py \
		--listen 127.0.0.1:0 --data-listen 127.0.0.1:0 \
		--token "$SG_SIM_TOKEN" --ready-file "$SWITCHGRID_SIM_READY" --quiet "$@")

	deadline=$((SECONDS + SG_TIMEOUT_SIM))
	while :; do
		SG_SIM_PID=$(cat "$dir/switchgrid_sim.pid" 2>/dev/null || true)
		if [ -s "$SWITCHGRID_SIM_READY" ] &&
			{ read -r SG_SIM_BASE_URL && read -r SG_SIM_CONTROL_URL; } < <(
				python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["base_url"]); print(d["control_url"])' "$SWITCHGRID_SIM_READY" 2>/dev/null); then
			break
		fi
		if [ -n "$SG_SIM_PID" ] && ! sg_pid_alive "$SG_SIM_PID"; then
			sg_log_tail "$dir/sim.log"
			sg_die "the simulator exited before it was ready"
		fi
		if [ $SECONDS -ge $deadline ]; then
			sg_log_tail "$dir/sim.log"
			sg_die "the simulator was not ready within $SG_TIMEOUT_SIM s"
		fi
		sleep 0.1
	done
	sg_msg "simulator ready at $SG_SIM_BASE_URL (pid $SG_SIM_PID)"
}

# sg_sim_stop DIR: stop the simulator whose pid file is in DIR, if it runs.
sg_sim_stop()
{
	local pid

	pid=$(cat "$1/switchgrid_sim.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && sg_pid_is_sim "$pid"; then
		sg_kill_wait "$pid"
	fi
}

# sg_conf_literal VALUE: VALUE as a postgresql.conf string literal.
sg_conf_literal()
{
	printf "'%s'" "${1//\'/\'\'}"
}

# sg_pg_start DIR: initdb a throwaway cluster in DIR/data (trust, C locale),
# listening on a socket in DIR/sock and on 127.0.0.1 at a free port, with the
# library preloaded and pointed at the simulator if one was started
# (sg_sim_start), and start it. Lines in SG_PG_EXTRA_CONF are appended to postgresql.conf.
# SG_PG_CREATEDB names a database to create before the server first starts
# (in single-user mode), so that a worker told to work in it finds it there
# instead of logging a FATAL "database does not exist".
# SG_POSTGRES, if set, is the program pg_ctl starts instead of postgres (a
# wrapper that runs it under valgrind: dev/valgrind), and SG_PG_START_TIMEOUT
# the seconds pg_ctl waits for it (default 60).
# Sets SG_PGDATA, SG_PGLOG; exports PGHOST, PGPORT, PGUSER,
# PGDATABASE=postgres.
sg_pg_start()
{
	local dir=$1 port attempt

	SG_PGDATA=$dir/data
	SG_PGLOG=$dir/postgres.log
	sg_mkdir_runner "$dir/sock"
	if ! sg_as_runner "$SG_BINDIR/initdb" -D "$SG_PGDATA" --auth=trust --no-sync \
		--locale=C --encoding=UTF8 >"$dir/initdb.log" 2>&1; then
		sg_log_tail "$dir/initdb.log"
		sg_die "initdb failed"
	fi
	sg_as_runner tee -a "$SG_PGDATA/postgresql.conf" >/dev/null <<-EOF

		# throwaway cluster for switchgrid (dev/lib.sh)
		listen_addresses = '127.0.0.1'
		unix_socket_directories = $(sg_conf_literal "$dir/sock")
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		log_line_prefix = '%m [%p] %q%a '
		shared_preload_libraries = 'switchgrid'
	EOF
	# pointed at the simulator, when one runs (sg_sim_start)
	if [ -n "${SG_SIM_BASE_URL:-}" ]; then
		sg_as_runner tee -a "$SG_PGDATA/postgresql.conf" >/dev/null <<-EOF
			switchgrid.base_url = $(sg_conf_literal "$SG_SIM_BASE_URL")
			switchgrid.api_token_file = $(sg_conf_literal "$SG_TOKEN_FILE")
		EOF
	fi
	# more settings from the caller (dev/sandbox names the worker's database)
	if [ -n "${SG_PG_EXTRA_CONF:-}" ]; then
		printf '%s\n' "$SG_PG_EXTRA_CONF" | sg_as_runner tee -a "$SG_PGDATA/postgresql.conf" >/dev/null
	fi

	# created before the server (and its background worker) starts
	if [ -n "${SG_PG_CREATEDB:-}" ]; then
		if ! printf 'CREATE DATABASE "%s"\n' "${SG_PG_CREATEDB//\"/\"\"}" |
			sg_as_runner "$SG_BINDIR/postgres" --single -D "$SG_PGDATA" \
				-c shared_preload_libraries= -c log_min_messages=warning postgres \
				>"$dir/createdb.log" 2>&1; then
			sg_log_tail "$dir/createdb.log"
			sg_die "could not create database $SG_PG_CREATEDB"
		fi
	fi

	# A free port can be taken between our check and the bind: try again then.
	for attempt in 1 2 3; do
		port=$(sg_free_port)
		if sg_as_runner "$SG_BINDIR/pg_ctl" -D "$SG_PGDATA" -l "$SG_PGLOG" -w \
			-t "${SG_PG_START_TIMEOUT:-60}" ${SG_POSTGRES:+-p "$SG_POSTGRES"} \
			-o "-p $port" start >/dev/null; then
			export PGHOST=$dir/sock PGPORT=$port PGUSER=$SG_RUNNER PGDATABASE=postgres
			sg_msg "cluster running: PGHOST=$PGHOST PGPORT=$PGPORT (and 127.0.0.1:$PGPORT)"
			return 0
		fi
		grep -q 'could not bind\|could not create any TCP/IP sockets' "$SG_PGLOG" 2>/dev/null || break
		sg_msg "port $port was taken, trying another"
	done
	sg_log_tail "$SG_PGLOG"
	sg_die "the cluster did not start"
}

# sg_pg_stop DATADIR: stop the cluster in DATADIR if it runs (fast, then
# immediate).
sg_pg_stop()
{
	[ -f "$1/postmaster.pid" ] || return 0
	sg_as_runner "$SG_BINDIR/pg_ctl" -D "$1" -m fast -w -t 30 stop >/dev/null 2>&1 ||
		sg_as_runner "$SG_BINDIR/pg_ctl" -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
		sg_msg "could not stop the cluster in $1"
}

# sg_sweep DIR: stop every cluster and simulator left running under DIR (by
# TAP tests that were killed before their END blocks ran, for example).
sg_sweep()
{
	local f pid

	[ -d "$1" ] || return 0
	while IFS= read -r -d '' f; do
		sg_msg "stopping leftover cluster in ${f%/postmaster.pid}"
		sg_as_runner "$SG_BINDIR/pg_ctl" -D "${f%/postmaster.pid}" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	done < <(find "$1" -name postmaster.pid -print0 2>/dev/null)
	while IFS= read -r -d '' f; do
		pid=$(cat "$f" 2>/dev/null || true)
		if [ -n "$pid" ] && sg_pid_is_sim "$pid"; then
			sg_msg "stopping leftover simulator $pid"
			sg_kill_wait "$pid"
		fi
	done < <(find "$1" -name switchgrid_sim.pid -print0 2>/dev/null)
}
