#!/usr/bin/env bats
#
# t/faults.bats: fault injection (issue 8): a database directory that
# cannot be written at startup, kill -9 under 50 concurrent senders, and a
# disk that fills during commits. The tests run as root, where chmod does
# not stop anything, so read-only and full file systems are real mounts
# (a read-only bind mount, a small tmpfs); where mounting is not allowed
# the test skips and says why. doc/hardening.md lists what each proves.

load lib/common

HARD_LOAD=${TOP_BUILDDIR}/t/tools/hard-load
MOUNTS=()
IMMUTABLE=

teardown() {
	local m rc=0

	[[ -z $IMMUTABLE ]] || chattr -i "$IMMUTABLE" 2>/dev/null || true
	# unmount even when stopping a server failed
	mychat_teardown || rc=$?
	for m in "${MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	return $rc
}

# Mount a read-only bind of $1 on $2, or skip.
ro_bind() {
	mkdir -p "$2"
	if ! mount --bind "$1" "$2" 2>/dev/null; then
		skip "cannot bind-mount here (needs root and CAP_SYS_ADMIN)"
	fi
	MOUNTS+=("$2")
	if ! mount -o remount,bind,ro "$2" 2>/dev/null; then
		skip "cannot remount a bind mount read-only here"
	fi
	# prove it is read-only, also for root
	if touch "$2/.probe" 2>/dev/null; then
		rm -f "$2/.probe"
		fail "$2 is still writable"
	fi
}

# Mount a tmpfs of size $2 on $1, or skip.
small_tmpfs() {
	mkdir -p "$1"
	if ! mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null; then
		skip "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)"
	fi
	MOUNTS+=("$1")
}

# Fill the file system holding $1 (dd stops at ENOSPC).
fill_fs() {
	dd if=/dev/zero of="$1" bs=64k 2>/dev/null || true
	sync
	[[ $(df --output=avail -k "$(dirname "$1")" | tail -n 1) -lt 64 ]] ||
	    fail "the file system is not full"
}

# Run mychatd that must refuse to start: status in STATUS, output in OUTPUT.
run_refused() {
	local port

	port=$(free_port)
	run timeout 20 "$MYCHATD" -f -p "$port" -a 127.0.0.1 "$@"
	echo "status $status: $output"
	[[ $status -ne 124 ]] || fail "mychatd was still running after 20 s"
	[[ $status -ne 0 ]] || fail "mychatd exited 0"
	((status < 128)) || fail "mychatd died of signal $((status - 128))"
}

need_load() {
	[[ -x $HARD_LOAD ]] || skip "t/tools/hard-load is not built (make check builds it)"
}

@test "database path is a regular file: clear error, exit non-zero" {
	local f=$BATS_TEST_TMPDIR/notadir

	echo "not a directory" >"$f"
	run_refused -d "$f"
	assert_output --regexp "$f.*Not a directory"
}

@test "database directory on a read-only file system (empty): clear error, exit non-zero" {
	mkdir -p "$BATS_TEST_TMPDIR/src"
	ro_bind "$BATS_TEST_TMPDIR/src" "$BATS_TEST_TMPDIR/ro"
	run_refused -d "$BATS_TEST_TMPDIR/ro"
	assert_output --regexp "$BATS_TEST_TMPDIR/ro.*Read-only file system"
	run_refused -d "$BATS_TEST_TMPDIR/ro/db"
	assert_output --regexp "$BATS_TEST_TMPDIR/ro/db.*Read-only file system"
}

@test "existing database on a read-only file system: clear error, exit non-zero" {
	local u

	start_server --dir "$BATS_TEST_TMPDIR/src"
	u=$(uniq_name)
	register_on a "$u" pw
	conn_close a
	stop_server
	ro_bind "$BATS_TEST_TMPDIR/src" "$BATS_TEST_TMPDIR/ro"
	run_refused -d "$BATS_TEST_TMPDIR/ro"
	assert_output --regexp "$BATS_TEST_TMPDIR/ro.*Read-only file system"
}

@test "database directory marked immutable (chattr +i): clear error, exit non-zero" {
	local d=$BATS_TEST_TMPDIR/immutable

	command -v chattr >/dev/null || skip "chattr is not installed"
	mkdir -p "$d"
	chattr +i "$d" 2>/dev/null || skip "chattr +i not supported on $(df --output=fstype "$d" | tail -n 1)"
	IMMUTABLE=$d
	if touch "$d/.probe" 2>/dev/null; then
		fail "$d is still writable"
	fi
	run_refused -d "$d"
	assert_output --regexp "$d.*(Operation not permitted|Permission denied)"
}

# kill -9 mid-load, restart, check: every 250 is stored, none twice; then a
# full resend with the same tokens stores nothing twice either.
kill9_under_load() {
	local mode=$1 dir=$BATS_TEST_TMPDIR/db acks=$BATS_TEST_TMPDIR/acks
	local acks2=$BATS_TEST_TMPDIR/acks2 p=k$RANDOM pid n

	need_load
	start_server --dir "$dir" -D "$mode"
	pid=$SERVER_PID
	register_on r "${p}_r" pw
	conn_close r
	# 50 senders x 400 messages, 8 in flight each; SIGKILL after 4000 acks
	run "$HARD_LOAD" -p "$PORT" -P "$p" -c 50 -n 400 -w 8 -o "$acks" \
	    -K 4000 -X "$pid"
	echo "$output"
	assert_success
	kill9_server "$pid"
	n=$(wc -l <"$acks")
	echo "$n messages got a 250 before the kill"
	((n >= 4000)) || fail "only $n acks recorded"
	((n < 20000)) || fail "the server was killed after the load ended"

	start_server --dir "$dir" -D "$mode"
	run "$HARD_LOAD" -p "$PORT" -P "$p" -c 50 -n 400 -V "$acks"
	echo "$output"
	assert_success
	assert_output --regexp "^acked $n stored [0-9]+ missing 0 duplicated 0 mismatched 0$"

	# the clients resend everything with the same tokens
	run "$HARD_LOAD" -p "$PORT" -P "$p" -c 50 -n 400 -w 8 -o "$acks2"
	echo "$output"
	assert_success
	assert_output "acks 20000"
	run "$HARD_LOAD" -p "$PORT" -P "$p" -c 50 -n 400 -V "$acks2"
	echo "$output"
	assert_success
	assert_output "acked 20000 stored 20000 missing 0 duplicated 0 mismatched 0"
	# and the ids given before the crash are the ids given now
	run "$HARD_LOAD" -p "$PORT" -P "$p" -c 50 -n 400 -V "$acks"
	assert_success
	stop_server
}

@test "kill -9 under 50 concurrent senders (sync): no 250 lost, none duplicated" {
	kill9_under_load sync
}

@test "kill -9 under 50 concurrent senders (nosync): no 250 lost, none duplicated" {
	kill9_under_load nosync
}

@test "disk full during commits: 451 try again later, server keeps running, recovers" {
	local mnt=$BATS_TEST_TMPDIR/mnt u i line n451=0 n250=0 text

	small_tmpfs "$mnt" 200m
	start_server --dir "$mnt/db"
	u=$(uniq_name)
	register_on a "$u" pw
	send a "TO $u"
	expect_reply a 200
	send a "MSG before the disk fills"
	expect_reply a 250 '^250 [0-9]+ delivered$'
	expect_push a 'before the disk fills$'
	conn_open other
	fill_fs "$mnt/filler"
	# enough data that the log needs new blocks: 300 x 1 KiB, pipelined
	text=$(filler 1000)
	for ((i = 1; i <= 300; i++)); do
		send a "MSG full $i $text" >/dev/null || return 1
	done
	for ((i = 1; i <= 300; i++)); do
		recv a >/dev/null || return 1
		line=$LINE
		while [[ $line == MSG* ]]; do	# pushes of accepted ones
			recv a >/dev/null || return 1
			line=$LINE
		done
		case $line in
		"451 try again later")	((++n451)) ;;
		"250 "*)		((++n250)) ;;
		*)	fail "reply $i: $line"; return 1 ;;
		esac
	done
	echo "while full: $n250 x 250, $n451 x 451"
	((n451 > 0)) || fail "no 451 although the disk is full"
	proc_alive "$SERVER_PID" || fail "the server died"
	send other "PING still serving"
	expect_reply other 200 '^200 PONG still serving$'
	# space returns: the same session goes on
	rm -f "$mnt/filler"
	send a "MSG after the disk has room"
	expect_reply a 250 '^250 [0-9]+ delivered$'
	expect_push a 'after the disk has room$'
	# what got 451 is not stored; what got 250 is
	send a "SYNC 0 1000"
	expect_reply a 200 "^200 $((n250 + 2)) messages, cursor [0-9]+\$"
	conn_close a
	conn_close other
	stop_server
	# and it all survives a restart
	start_server --dir "$mnt/db"
	login_on b "$u" pw
	send b "SYNC 0 1000"
	expect_reply b 200 "^200 $((n250 + 2)) messages, cursor [0-9]+\$"
}

@test "disk already full at startup: clear error, exit non-zero" {
	local mnt=$BATS_TEST_TMPDIR/mnt

	small_tmpfs "$mnt" 16m
	fill_fs "$mnt/filler"
	run_refused -d "$mnt/db"
	assert_output --regexp "No space left on device|ENOSPC|space"
}
