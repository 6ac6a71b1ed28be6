#!/usr/bin/env bats
#
# t/mychatctl.bats: the admin tool, mostly against a running server on the
# same database directory (both open the Berkeley DB environment with
# DB_REGISTER|DB_RECOVER): accounts made by the tool log in over the
# socket, accounts made over the socket show in the tool, and a hot backup
# taken under load restores with every acknowledged message.

load lib/common

teardown() {
	mychat_teardown
}

# Run mychatctl on the server's database (or $CTL_DIR); sets status/output.
ctl() {
	run "$MYCHATCTL" -d "${CTL_DIR:-$SERVER_DIR}" "$@"
	echo "mychatctl $* -> $status"
	echo "$output"
}

# The same with the password $1 in MYCHATCTL_PASSWORD.
ctl_pw() {
	local pw=$1

	shift
	run env MYCHATCTL_PASSWORD="$pw" "$MYCHATCTL" \
	    -d "${CTL_DIR:-$SERVER_DIR}" "$@"
	echo "MYCHATCTL_PASSWORD=... mychatctl $* -> $status"
	echo "$output"
}

@test "mychatctl: useradd while the server runs, then LOGIN over the socket" {
	start_server
	ctl_pw s3cret useradd Dora
	assert_success
	assert_output "Dora added"
	login_on a dora s3cret
	assert_equal "$LAST_REPLY" "200 welcome Dora, 0 waiting"
	conn_open b
	send b "LOGIN Dora wrong"
	expect_reply b 401
	stop_server
}

@test "mychatctl: useradd refuses a taken name (exit 4), REGISTER sees it" {
	start_server
	register_on a Erin pw1
	ctl_pw x useradd erin
	assert_failure 4
	assert_output --partial "Erin already exists"
	ctl_pw x useradd Frank
	assert_success
	conn_open b
	send b "REGISTER frank pw2"
	expect_reply b 409 '^409 frank is taken$|^409 Frank is taken$'
	stop_server
}

@test "mychatctl: passwd changes the password of a live server's account" {
	start_server
	register_on a gina old_pw
	conn_close a
	ctl_pw new_pw passwd GINA
	assert_success
	assert_output "password of gina changed"
	conn_open b
	send b "LOGIN gina old_pw"
	expect_reply b 401
	login_on c gina new_pw
	ctl_pw x passwd nobody
	assert_failure 3
	stop_server
}

@test "mychatctl: userdel removes an account; LOGIN then fails" {
	start_server
	register_on a hank pw
	conn_close a
	ctl userdel Hank
	assert_success
	conn_open b
	send b "LOGIN hank pw"
	expect_reply b 401
	ctl userdel hank
	assert_failure 3
	assert_output --partial "no such user hank"
	stop_server
}

@test "mychatctl: users lists accounts with last login time and address" {
	start_server
	register_on a Ivy pw
	conn_close a
	ctl_pw pw useradd jack
	assert_success
	login_on b jack pw
	ctl users
	assert_success
	assert_line --index 0 --regexp '^NAME +CREATED +LAST-LOGIN +LAST-IP$'
	assert_line --regexp '^Ivy +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z +'
	assert_line --regexp \
	    '^jack +[0-9-]+T[0-9:.]+Z +[0-9-]+T[0-9:.]+Z +127\.0\.0\.1$'
	assert_equal "${#lines[@]}" 3
	stop_server
}

@test "mychatctl: pending counts messages after the ACK cursor" {
	local id1 id2 id3

	start_server
	register_on a kate pw
	register_on b liam pw
	conn_close b
	send a "TO liam"
	expect_reply a 503
	send a "MSG one"
	expect_reply a 250 '^250 [0-9]+ queued$'
	id1=$(awk '{print $2}' <<<"$LAST_REPLY")
	send a "MSG two"
	expect_reply a 250
	id2=$(awk '{print $2}' <<<"$LAST_REPLY")
	send a "MSG three"
	expect_reply a 250
	id3=$(awk '{print $2}' <<<"$LAST_REPLY")
	ctl pending liam
	assert_success
	assert_line --index 1 --regexp '^liam +3 0$'
	ctl pending
	assert_success
	assert_line --regexp '^kate +0 0$'
	assert_line --regexp '^liam +3 0$'

	login_on c liam pw
	assert_equal "$LAST_REPLY" "200 welcome liam, 3 waiting"
	send c "ACK $id2"
	expect_reply c 200 "^200 acked $id2\$"
	ctl pending liam
	assert_line --index 1 --regexp "^liam +1 $id2\$"
	send c "ACK $id3"
	expect_reply c 200
	ctl pending LIAM
	assert_line --index 1 --regexp "^liam +0 $id3\$"
	ctl pending nobody
	assert_failure 3
	[[ -n $id1 ]]
	stop_server
}

@test "mychatctl: verify on a live database" {
	start_server
	register_on a mona pw
	register_on b nick pw
	send a "TO nick"
	expect_reply a 200
	send a "MSG hello"
	expect_reply a 250
	ctl verify
	assert_success
	assert_output "$SERVER_DIR: ok: 2 users, 1 messages"
	stop_server
}

@test "mychatctl: usage errors and their exit codes" {
	local d=$BATS_TEST_TMPDIR/db

	CTL_DIR=$d
	run "$MYCHATCTL"
	assert_failure 2
	ctl frobnicate
	assert_failure 2
	assert_output --partial 'unknown command "frobnicate"'
	ctl users extra
	assert_failure 2
	ctl users
	assert_failure 1
	assert_output --partial "no mychat database here"
	[[ ! -e $d ]] || fail "users created $d"
	ctl_pw pw useradd 'bad/name'
	assert_failure 2
	ctl_pw 'has space' useradd okname
	assert_failure 2
	assert_output --partial "a password is 1 to 256 bytes"
	ctl_pw "$(filler 257)" useradd okname
	assert_failure 2
	# No password and no terminal: refused, not hung.
	run timeout 10 setsid "$MYCHATCTL" -d "$d" useradd okname </dev/null
	assert_failure 1
	assert_output --partial "set MYCHATCTL_PASSWORD"
	# useradd makes a new database; then the other commands work on it.
	ctl_pw pw useradd okname
	assert_success
	ctl users
	assert_success
	assert_line --regexp '^okname '
}

@test "mychatctl: -c takes the database directory from mychatd.conf" {
	local d=$BATS_TEST_TMPDIR/confdb f=$BATS_TEST_TMPDIR/m.conf

	printf 'database "%s"\n' "$d" >"$f"
	run env MYCHATCTL_PASSWORD=pw "$MYCHATCTL" -c "$f" useradd olga
	assert_success
	CTL_DIR=$d
	ctl users
	assert_line --regexp '^olga '
	printf 'database\n' >"$f"
	run "$MYCHATCTL" -c "$f" users
	assert_failure 1
	assert_output --partial "$f:1: missing value"
}

@test "mychatctl: after kill -9 of the server the tool recovers the database" {
	start_server
	register_on a pat pw
	send a "TO pat"
	expect_reply a 200
	send a "MSG note to self"
	expect_reply a 250
	kill9_server
	ctl verify
	assert_success
	assert_output --partial "ok: 1 users, 1 messages"
	ctl users
	assert_line --regexp '^pat '
	start_server --dir "$SERVER_DIR"
	login_on b pat pw
	stop_server
}

# Send numbered messages on connection $1 to $2 until the file $3 exists,
# appending the id of each acknowledged (250) message to $4.
load_loop() {
	local c=$1 to=$2 stop=$3 out=$4 n=0

	send "$c" "TO $to" >/dev/null || return 1
	expect_reply "$c" 503 >/dev/null || return 1
	until [[ -e $stop ]]; do
		n=$((n + 1))
		send "$c" "MSG $c message $n" >/dev/null || return 1
		expect_reply "$c" 250 >/dev/null || return 1
		echo "${LAST_REPLY#250 }" | cut -d' ' -f1 >>"$out"
	done
}

@test "mychatctl: a backup under load restores every message acked before it" {
	local stop=$BATS_TEST_TMPDIR/stop acked=$BATS_TEST_TMPDIR/acked
	local snap=$BATS_TEST_TMPDIR/snapshot got=$BATS_TEST_TMPDIR/got
	local bulk=$BATS_TEST_TMPDIR/bulk bk=$BATS_TEST_TMPDIR/backup
	local l1 l2 l3 deadline n before after cursor i

	start_server
	register_on s1 quinn pw
	register_on s2 ruth pw
	register_on r sam pw
	conn_close r
	: >"$acked"
	load_loop s1 sam "$stop" "$acked" &
	l1=$!
	load_loop s2 sam "$stop" "$acked" &
	l2=$!
	# More load: a pipelined writer, as fast as the server takes it.
	register_on s3 uli pw
	conn_close s3
	(
		printf 'LOGIN uli pw\r\nTO sam\r\n'
		while [[ ! -e $stop ]]; do
			for i in {1..100}; do
				printf 'MSG bulk %d\r\n' "$i"
			done
		done
		printf 'QUIT\r\n'
	) | socat -t 10 - "TCP:127.0.0.1:$PORT" >"$bulk" &
	l3=$!
	# Let the load run: wait for some acknowledged messages and bulk ones.
	deadline=$((SECONDS + 60))
	while (($(wc -l <"$acked") < 20)) ||
	    ! grep -q '^250 ' "$bulk"; do
		((SECONDS < deadline)) ||
		    fail "load did not start: $(wc -l <"$acked") acked"
		proc_alive "$l1" && proc_alive "$l2" || fail "a loader died"
		sleep 0.05
	done
	# Everything acknowledged before the backup starts (whole reply lines
	# only from the bulk writer).
	cp "$acked" "$snap"
	sed -n 's/^250 \([0-9][0-9]*\) queued.*/\1/p' "$bulk" \
	    >>"$snap"
	before=$(wc -l <"$snap")
	ctl backup "$bk"
	assert_success
	after=$(($(wc -l <"$acked") + $(grep -c '^250 ' "$bulk")))
	echo "# acked before the backup: $before, when it ended: $after" >&3
	# The loaders kept running during the backup.
	proc_alive "$l1" && proc_alive "$l2" || fail "a loader died"
	touch "$stop"
	wait "$l1" || fail "loader 1 failed"
	wait "$l2" || fail "loader 2 failed"
	wait "$l3" || true
	echo "# bulk writer: $(grep -c '^250 ' "$bulk") messages" >&3
	stop_server

	# Restore: a server on the backup directory.
	CTL_DIR=$bk
	ctl verify
	assert_success
	start_server --dir "$bk"
	login_on r sam pw
	: >"$got"
	cursor=0
	while :; do
		send r "SYNC $cursor 1000"
		expect_reply r 200 '^200 [0-9]+ messages, cursor [0-9]+'
		for l in "${REPLY_LINES[@]}"; do
			[[ $l =~ ^200-([0-9]+)\  ]] && echo "${BASH_REMATCH[1]}"
		done >>"$got"
		[[ $LAST_REPLY =~ cursor\ ([0-9]+) ]]
		cursor=${BASH_REMATCH[1]}
		[[ $LAST_REPLY =~ more$ ]] || break
	done
	n=$(sort -u "$snap" | comm -23 - <(sort -u "$got") | wc -l)
	echo "# restored: $(wc -l <"$got") messages" >&3
	[[ $n -eq 0 ]] ||
	    fail "$n acknowledged messages missing from the backup"
	stop_server
}

@test "mychatctl: accounts added during load can log in; verify stays ok" {
	local stop=$BATS_TEST_TMPDIR/stop acked=$BATS_TEST_TMPDIR/acked l1 i

	start_server
	register_on s1 tom pw
	register_on r uma pw
	conn_close r
	: >"$acked"
	load_loop s1 uma "$stop" "$acked" &
	l1=$!
	for i in 1 2 3 4 5; do
		ctl_pw "pw$i" useradd "user$i"
		assert_success
	done
	ctl users
	assert_success
	assert_equal "${#lines[@]}" 8
	ctl pending uma
	assert_success
	touch "$stop"
	wait "$l1" || fail "loader failed"
	for i in 1 2 3 4 5; do
		login_on "c$i" "user$i" "pw$i"
	done
	ctl verify
	assert_success
	stop_server
}

@test "mychatctl: verify while the server is writing messages reports ok" {
	local stop=$BATS_TEST_TMPDIR/stop out=$BATS_TEST_TMPDIR/load.out
	local lp deadline i n

	start_server
	register_on a vera pw
	register_on b walt pw
	conn_close a
	conn_close b
	# A pipelined writer: MSG lines as fast as the server takes them.
	(
		printf 'LOGIN vera pw\r\nTO walt\r\n'
		while [[ ! -e $stop ]]; do
			for i in {1..200}; do
				printf 'MSG load %d\r\n' "$i"
			done
		done
		printf 'QUIT\r\n'
	) | socat -t 10 - "TCP:127.0.0.1:$PORT" >"$out" &
	lp=$!
	deadline=$((SECONDS + 10))
	until grep -q '^250 ' "$out"; do
		((SECONDS < deadline)) || fail "the writer did not start"
		sleep 0.02
	done
	for i in 1 2 3 4 5; do
		ctl verify
		assert_success
		assert_output --regexp ': ok: 2 users, [0-9]+ messages$'
	done
	proc_alive "$lp" || fail "the writer ended before the checks did"
	touch "$stop"
	wait "$lp" || true
	n=$(grep -c '^250 ' "$out")
	echo "# $n messages written during the checks" >&3
	stop_server
	CTL_DIR=$SERVER_DIR
	ctl verify
	assert_success
	assert_output --partial ": ok: 2 users, $n messages"
}

@test "mychatctl: run as root on the server user's database, files stay its" {
	local d

	[[ $EUID -eq 0 ]] || skip "needs root"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	# Not under the bats temporary directory: nobody cannot enter that.
	d=$(mktemp -d /tmp/mychatctl-owner.XXXXXX)
	chmod 755 "$d"
	CTL_DIR=$d/db
	ctl_pw pw useradd xena
	assert_success
	chown -R nobody: "$d/db"
	# Recovery (after a crash of the server) rebuilds the regions: so does
	# an open without them.
	rm -f "$d"/db/__db.0*
	ctl_pw pw useradd yuri
	assert_success
	ctl users
	assert_success
	assert_line --regexp '^yuri '
	run find "$d/db" ! -user nobody
	rm -rf "$d"
	assert_output ""
}

@test "mychatctl: killed at the password prompt, the server is unharmed" {
	local fifo=$BATS_TEST_TMPDIR/tty.in out=$BATS_TEST_TMPDIR/tty.out
	local sp cp w deadline

	command -v script >/dev/null || skip "no script(1)"
	start_server
	register_on a vic pw
	conn_close a
	# mychatctl on a pseudo-terminal (script), waiting at its prompt.
	mkfifo "$fifo"
	script -qec "exec '$MYCHATCTL' -d '$SERVER_DIR' useradd walt" \
	    /dev/null <"$fifo" >"$out" 2>&1 3>&- &
	sp=$!
	exec {w}>"$fifo"
	deadline=$((SECONDS + MYCHAT_TIMEOUT))
	until grep -q 'New password for walt' "$out"; do
		((SECONDS < deadline)) || fail "no prompt: $(cat "$out")"
		sleep 0.02
	done
	cp=$(ps -o pid= --ppid "$sp" | tr -d ' ')
	[[ -n $cp ]] || fail "no mychatctl under script"
	kill -TERM "$cp"
	wait_exit "$sp" 10 || fail "script did not end"
	exec {w}>&-
	# The next process to open the database must not run recovery
	# under the server's feet.
	ctl users
	assert_success
	assert_line --regexp '^vic '
	login_on b vic pw
	send b "TO vic"
	expect_reply b 200
	send b "MSG still fine"
	expect_reply b 250
	stop_server
}
