#!/usr/bin/env bats
#
# t/park.bats: parked connections (src/conn.c). A connection quiet for a
# whole sweep (1 s) gives up its bufferevent; one event watches the socket.
# Everything a session can meet must still work on a parked connection:
# its own input, a push to it, the idle and login timeouts, EOF, and a
# server shutdown. The server runs with -v, whose debug lines say
# "conn N: parked" and "conn N: woken"; the tests wait for those lines
# (with a timeout) instead of sleeping.

load lib/common

teardown() {
	mychat_teardown
	stop_all_servers
}

# Wait up to $2 s until the server log has at least $3 lines matching $1.
wait_log_count() {
	local re=$1 t=$2 want=$3 deadline n

	deadline=$((SECONDS + t))
	while :; do
		n=$(grep -Ec -- "$re" "$SERVER_LOG" || true)
		((n >= want)) && return 0
		if ((SECONDS >= deadline)); then
			fail "$(printf '%s s without %s lines matching %s (saw %s):\n%s' \
			    "$t" "$want" "$re" "$n" "$(tail -n 20 "$SERVER_LOG")")"
			return 1
		fi
		sleep 0.05
	done
}

# A config file with the given lines; sets CONF.
conf() {
	CONF=$BATS_TEST_TMPDIR/park.conf
	printf '%s\n' "$@" >"$CONF"
}

@test "park: a quiet session is parked, then answers its own commands" {
	local n

	start_server -v
	n=$(uniq_name)
	register_on a "$n" pw
	wait_log_count ': parked$' 10 1
	send a "PING after-park"
	expect_reply a 200 '^200 PONG after-park$'
	wait_log_count ': woken$' 10 1
	# and again: parked a second time, woken by the next command
	wait_log_count ': parked$' 10 2
	send a "WHO"
	expect_reply a 200 '^200 [0-9]+ online$'
}

@test "park: a message to a parked session is pushed, and its ACK works" {
	local a b id

	start_server -v
	a=$(uniq_name a)
	b=$(uniq_name b)
	register_on a "$a" pw
	register_on b "$b" pw
	send a "TO $b"
	expect_reply a 200
	wait_log_count ': parked$' 10 2	# both sessions quiet
	send a "MSG hello parked"
	expect_reply a 250 '^250 [0-9]+ delivered$'
	expect_push b "^MSG [0-9]+ $a [^ ]+ hello parked$"
	id=$(awk '{ print $2 }' <<<"$LINE")
	wait_log_count ': parked$' 10 3	# b parked again after the push
	send b "ACK $id"
	expect_reply b 200 "^200 acked $id$"
	expect_push a "^ACKED $id $b$"
}

@test "park: the idle timeout still closes a parked session, on time" {
	local t0

	conf "idle-timeout 3"
	start_server -v -c "$CONF"
	register_on a "$(uniq_name)" pw
	t0=$SECONDS
	wait_log_count ': parked$' 10 1
	expect_line a '^421 idle timeout$'
	expect_eof a
	# not before the 3 s from the last read (the clock is in seconds)
	((SECONDS - t0 >= 2)) || fail "closed after $((SECONDS - t0)) s"
}

@test "park: a parked guest still gets the login timeout" {
	conf "login-timeout 3"
	start_server -v -c "$CONF"
	conn_open a
	wait_log_count ': parked$' 10 1
	expect_line a '^421 login timeout$'
	expect_eof a
}

@test "park: EOF on a parked session logs it out" {
	local a b

	start_server -v
	a=$(uniq_name a)
	b=$(uniq_name b)
	register_on a "$a" pw
	wait_log_count ': parked$' 10 1
	conn_close a
	wait_log_count "event: logout $a from" 10 1
	register_on b "$b" pw
	send b "TO $a"
	expect_reply b 503 "^503 $a is offline"
}

@test "park: shutdown says 421 to parked sessions and exits 0" {
	start_server -v
	register_on a "$(uniq_name)" pw
	wait_log_count ': parked$' 10 1
	kill -TERM "$SERVER_PID"
	expect_line a '^421 '
	expect_eof a
	wait_exit "$SERVER_PID" 20 || fail "mychatd still running 20 s after SIGTERM"
	[[ $WAIT_STATUS == 0 ]] || fail "mychatd exited with $WAIT_STATUS"
	forget_pid "$SERVER_PID"
}
