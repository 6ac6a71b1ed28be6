#!/usr/bin/env bats
#
# t/conf.bats: the configuration file of mychatd (mychatd.conf(5)): parse
# errors name the file and line and stop the server; a good file is
# honoured; the command line overrides it; SIGHUP re-reads it live.

load lib/common

teardown() {
	mychat_teardown
}

# Write the configuration file $1 from the remaining arguments, one line
# each.
write_conf() {
	local f=$1

	shift
	printf '%s\n' "$@" >"$f"
}

# Start mychatd -f -c FILE [args] in a fresh database directory and wait
# until it listens on port $2 (the port the file or the arguments name).
# Like start_server, but without its -p, so that the file's port counts.
start_with_conf() {
	local conf=$1 port=$2 dir pid deadline status

	shift 2
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/db.XXXXXX")
	SERVER_LOG=$(mktemp --suffix=.log "$BATS_TEST_TMPDIR/mychatd.XXXXXX")
	"$MYCHATD" -f -c "$conf" -d "$dir" "$@" </dev/null >"$SERVER_LOG" \
	    2>&1 3>&- &
	pid=$!
	deadline=$((SECONDS + MYCHAT_START_TIMEOUT))
	until proc_listens "$pid" "$port"; do
		if ! proc_alive "$pid"; then
			status=0
			wait "$pid" 2>/dev/null || status=$?
			fail "$(printf 'mychatd exited with status %s:\n%s' \
			    "$status" "$(tail -n 30 "$SERVER_LOG")")"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			kill -9 "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			fail "$(printf 'mychatd not listening on %s:\n%s' \
			    "$port" "$(tail -n 30 "$SERVER_LOG")")"
			return 1
		fi
		sleep 0.02
	done
	PORT=$port
	SERVER_PID=$pid
	SERVER_DIR=$dir
	MYCHAT_PIDS+=("$pid")
	MYCHAT_LOGS[$pid]=$SERVER_LOG
}

# mychatd with configuration $1 (and more arguments) must refuse to start:
# a non-zero exit, not a hang, and the error names FILE:LINE ($2) in its
# output; sets output like run.
refuses() {
	local conf=$1 where=$2 dir

	shift 2
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/db.XXXXXX")
	run timeout 10 "$MYCHATD" -f -c "$conf" -d "$dir" \
	    -p "$(free_port)" "$@" 3>&-
	echo "status $status, output: $output"
	[[ $status -ne 124 ]] || fail "mychatd hung on a bad configuration"
	[[ $status -ne 0 ]] || fail "mychatd exited 0 on a bad configuration"
	assert_output --partial "$where"
}

@test "conf: an unknown key names the file and line, no start" {
	local f=$BATS_TEST_TMPDIR/bad.conf

	write_conf "$f" "# a comment" "" "prot 5555" "port 5555"
	refuses "$f" "$f:3: unknown key \"prot\""
}

@test "conf: each kind of error names the file and line" {
	local f=$BATS_TEST_TMPDIR/bad.conf

	write_conf "$f" "max-line 4096" "port"
	refuses "$f" "$f:2: missing value for \"port\""
	write_conf "$f" "idle-timeout soon"
	refuses "$f" "$f:1: idle-timeout: bad number \"soon\""
	write_conf "$f" "" "" "" "max-connections 0"
	refuses "$f" "$f:4: max-connections: 0 out of range"
	write_conf "$f" "port 5555" "# again" "port 5556"
	refuses "$f" "$f:3: duplicate \"port\" (first set on line 1)"
	write_conf "$f" "database /tmp/a /tmp/b"
	refuses "$f" "$f:1: too many values for \"database\""
	write_conf "$f" "admin not/valid"
	refuses "$f" "$f:1: admin: invalid name"
	write_conf "$f" "durability sometimes"
	refuses "$f" "$f:1: durability: expected sync or nosync"
}

@test "conf: a missing configuration file is refused" {
	refuses "$BATS_TEST_TMPDIR/nonexistent.conf" \
	    "$BATS_TEST_TMPDIR/nonexistent.conf: No such file or directory"
}

@test "conf: the example etc/mychatd.conf starts the server" {
	local p

	p=$(free_port)
	start_with_conf "$TOP_SRCDIR/etc/mychatd.conf" "$p" -p "$p"
	conn_open a
	send a "PING x"
	expect_reply a 200 '^200 PONG x$'
	stop_server
}

@test "conf: port and max-line come from the file" {
	local f=$BATS_TEST_TMPDIR/good.conf p

	p=$(free_port)
	write_conf "$f" "# test" "port $p   # the port" "max-line 1K" \
	    "listen 127.0.0.1"
	start_with_conf "$f" "$p"
	conn_open a
	send_long a "PING " 1024
	expect_reply a 200 '^200 PONG x+$'
	send_long a "PING " 1025
	expect_reply a 413 '^413 line too long \(max 1024 bytes\)$'
	send a "PING after"
	expect_reply a 200 '^200 PONG after$'
	stop_server
}

@test "conf: -p and -l on the command line override the file" {
	local f=$BATS_TEST_TMPDIR/good.conf p1 p2

	p1=$(free_port)
	p2=$(free_port)
	while [[ $p2 == "$p1" ]]; do
		p2=$(free_port)
	done
	write_conf "$f" "port $p1" "max-line 1024"
	start_with_conf "$f" "$p2" -p "$p2" -l 2048
	proc_listens "$SERVER_PID" "$p1" && fail "listens on the file's port"
	conn_open a "$p2"
	send_long a "PING " 2048
	expect_reply a 200 '^200 PONG x+$'
	send_long a "PING " 2049
	expect_reply a 413 '^413 line too long \(max 2048 bytes\)$'
	stop_server
}

@test "conf: idle-timeout from the file closes a silent session with 421" {
	local f=$BATS_TEST_TMPDIR/idle.conf p

	p=$(free_port)
	write_conf "$f" "port $p" "idle-timeout 1"
	start_with_conf "$f" "$p"
	conn_open a
	expect_line a '^421 idle timeout$'
	expect_eof a
	stop_server
}

@test "conf: admin lines grant STATS, case-insensitively" {
	local f=$BATS_TEST_TMPDIR/admin.conf p

	p=$(free_port)
	write_conf "$f" "port $p" "admin ALICE"
	start_with_conf "$f" "$p"
	register_on a alice pw1
	send a "STATS"
	expect_reply a 200 '^200 end$'
	register_on b bob pw2
	send b "STATS"
	expect_reply b 403
	stop_server
}

@test "conf: exempt replaces the loopback default; per-IP limit applies" {
	local f=$BATS_TEST_TMPDIR/perip.conf p

	p=$(free_port)
	write_conf "$f" "port $p" "max-connections-per-ip 2" "exempt 192.0.2.1"
	start_with_conf "$f" "$p"
	conn_open a
	conn_open b
	conn_open_raw c
	expect_line c '^421 '
	expect_eof c
	# The first two are still served.
	send a "PING"
	expect_reply a 200 '^200 PONG'
	stop_server
}

@test "conf: log file from the file gets timestamped lines, no passwords" {
	local f=$BATS_TEST_TMPDIR/log.conf p log=$BATS_TEST_TMPDIR/server.log

	p=$(free_port)
	write_conf "$f" "port $p" "log file \"$log\""
	start_with_conf "$f" "$p"
	register_on a carol Secret_pw_123
	send a "QUIT"
	expect_reply a 221
	stop_server
	[[ -s $log ]] || fail "nothing logged to $log"
	cat "$log"
	run grep -c '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T' "$log"
	[[ $output -ge 1 ]] || fail "no timestamped line"
	run grep -i carol "$log"
	assert_success
	run grep -F Secret_pw_123 "$log"
	assert_failure
}

@test "conf: SIGHUP applies a new max-line without dropping connections" {
	local f=$BATS_TEST_TMPDIR/hup.conf p deadline

	p=$(free_port)
	write_conf "$f" "port $p" "max-line 1024"
	start_with_conf "$f" "$p"
	conn_open a
	send_long a "PING " 1500
	expect_reply a 413 '\(max 1024 bytes\)$'

	write_conf "$f" "port $p" "max-line 2048"
	kill -HUP "$SERVER_PID"
	# Wait for the reload to show, on the same connection.
	deadline=$((SECONDS + MYCHAT_TIMEOUT))
	while :; do
		send_long a "PING " 1500
		recv a
		[[ $LINE =~ ^200\ PONG ]] && break
		[[ $LINE =~ ^413\  ]] || fail "unexpected reply: $LINE"
		((SECONDS < deadline)) || fail "max-line not reloaded"
		sleep 0.05
	done
	send_long a "PING " 2049
	expect_reply a 413 '\(max 2048 bytes\)$'
	proc_alive "$SERVER_PID" || fail "server died on SIGHUP"
	stop_server
}

@test "conf: SIGHUP with a broken file keeps the running settings" {
	local f=$BATS_TEST_TMPDIR/hup.conf p deadline

	p=$(free_port)
	write_conf "$f" "port $p" "max-line 1024"
	start_with_conf "$f" "$p"
	conn_open a
	write_conf "$f" "port $p" "max-line lots"
	kill -HUP "$SERVER_PID"
	# The error is logged, naming the file and line.
	deadline=$((SECONDS + MYCHAT_TIMEOUT))
	until grep -qF "$f:2: max-line: bad number" "$SERVER_LOG"; do
		((SECONDS < deadline)) || {
			cat "$SERVER_LOG"
			fail "reload error not logged"
		}
		sleep 0.05
	done
	proc_alive "$SERVER_PID" || fail "server died on a bad reload"
	send_long a "PING " 1025
	expect_reply a 413 '\(max 1024 bytes\)$'
	send a "PING still"
	expect_reply a 200 '^200 PONG still$'
	stop_server
}

@test "conf: pidfile and log file from the file in daemon mode" {
	local f=$BATS_TEST_TMPDIR/daemon.conf p dir pid deadline
	local pidf=$BATS_TEST_TMPDIR/my.pid log=$BATS_TEST_TMPDIR/daemon.log

	p=$(free_port)
	dir=$BATS_TEST_TMPDIR/db
	write_conf "$f" "port $p" "listen 127.0.0.1" "pidfile $pidf" \
	    "log file $log"
	# Without -f: the parent returns once the daemon has its database.
	run timeout 20 "$MYCHATD" -c "$f" -d "$dir" 3>&-
	assert_success
	[[ -s $pidf ]] || fail "no pidfile $pidf"
	pid=$(<"$pidf")
	proc_alive "$pid" || fail "daemon $pid not running"
	deadline=$((SECONDS + MYCHAT_START_TIMEOUT))
	until proc_listens "$pid" "$p"; do
		((SECONDS < deadline)) || {
			kill -9 "$pid"
			fail "daemon not listening on $p"
		}
		sleep 0.02
	done
	PORT=$p
	conn_open a
	send a "PING d"
	expect_reply a 200 '^200 PONG d$'
	kill -TERM "$pid"
	expect_line a '^421 server shutting down$'
	deadline=$((SECONDS + 10))
	while proc_alive "$pid"; do
		((SECONDS < deadline)) || {
			kill -9 "$pid"
			fail "daemon did not stop"
		}
		sleep 0.02
	done
	[[ ! -e $pidf ]] || fail "pidfile left behind"
	grep -q 'started' "$log" || fail "no startup line in $log"
	check_server_log "$log"
}

@test "conf: user from the file drops root after binding" {
	local f=$BATS_TEST_TMPDIR/user.conf p d u

	[[ $EUID -eq 0 ]] || skip "needs root"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	# The database must be reachable by nobody: not in the bats tmpdir.
	d=$(mktemp -d /tmp/mychatd-user.XXXXXX)
	chmod 755 "$d"
	mkdir "$d/db"
	chown nobody: "$d/db"
	p=$(free_port)
	write_conf "$f" "port $p" "user nobody"
	# The last -d wins over start_with_conf's own.
	start_with_conf "$f" "$p" -d "$d/db"
	run awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$SERVER_PID/status"
	u=$(id -u nobody)
	assert_output "$u $u $u $u"
	register_on a zed pw
	stop_server
	run find "$d/db" ! -user nobody
	rm -rf "$d"
	assert_output ""
}

@test "conf: SIGHUP changes the admin list for sessions already logged in" {
	local f=$BATS_TEST_TMPDIR/admins.conf p deadline

	p=$(free_port)
	write_conf "$f" "port $p" "admin alice"
	start_with_conf "$f" "$p"
	register_on a alice pw1
	register_on b bob pw2
	send a "STATS"
	expect_reply a 200 '^200 end$'
	send b "STATS"
	expect_reply b 403

	write_conf "$f" "port $p" "admin bob"
	kill -HUP "$SERVER_PID"
	# Wait for the reload to show: bob's STATS is allowed.
	deadline=$((SECONDS + MYCHAT_TIMEOUT))
	while :; do
		send b "STATS"
		recv b
		[[ $LINE =~ ^200 ]] && break
		[[ $LINE =~ ^403\  ]] || fail "unexpected reply: $LINE"
		((SECONDS < deadline)) ||
		    fail "bob is still not an admin after SIGHUP"
		sleep 0.05
	done
	expect_reply b 200 '^200 end$'
	send a "STATS"
	expect_reply a 403
	stop_server
}
