#!/usr/bin/env bats
#
# t/client.bats: the mychat client's scripting mode (send, recv) end to
# end against a real mychatd, and against fake servers (socat) that never
# answer, send garbage or hang up in the middle of a line.

load lib/common

bats_require_minimum_version 1.5.0

setup_file() {
	start_server
}

teardown_file() {
	stop_all_servers
}

setup() {
	export XDG_DATA_HOME=$BATS_TEST_TMPDIR/xdg
	unset MYCHAT_PASSWORD
	FAKE_PID=
	BG_PID=
}

teardown() {
	local p

	for p in $FAKE_PID $BG_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	mychat_teardown
}

# Register account $1 with password $2 over a raw connection.
account() {
	register_on reg "$1" "$2"
	conn_close reg
}

# Run the client; never let a hang hang the test suite (124 = hung).
mc() {
	timeout 60 "$MYCHAT" "$@"
}

# Start a fake server on a free port: socat runs the bash script $1 for
# the first connection, its stdin and stdout being the socket. Sets
# FAKE_PORT.
fake_server() {
	local deadline

	command -v socat >/dev/null || skip "socat is not installed"
	FAKE_PORT=$(free_port)
	printf '#!/bin/bash\n%s\n' "$1" >"$BATS_TEST_TMPDIR/fake"
	chmod +x "$BATS_TEST_TMPDIR/fake"
	socat TCP-LISTEN:"$FAKE_PORT",bind=127.0.0.1,reuseaddr \
	    EXEC:"$BATS_TEST_TMPDIR/fake" </dev/null >/dev/null 2>&1 3>&- &
	FAKE_PID=$!
	deadline=$((SECONDS + 30))
	until proc_listens "$FAKE_PID" "$FAKE_PORT"; do
		((SECONDS < deadline)) || fail "fake server not listening"
		sleep 0.02
	done
}

@test "send to an online peer: exit 0 after 250, the peer gets the push" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	register_on peer "$b" pb

	MYCHAT_PASSWORD=pa run mc -p "$PORT" -u "$a" send "$b" "hello there"
	assert_success
	assert_output ''
	expect_push peer "^MSG [0-9]+ $a [0-9T:.-]+Z hello there$"
}

@test "send to an offline peer is queued (exit 0), recv prints it once" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=pa run mc -v -p "$PORT" -u "$a" send "$b" "first"
	assert_success
	assert_line --regexp '^503 '
	assert_line --regexp '^250 [0-9]+ queued$'
	MYCHAT_PASSWORD=pa run mc -p "$PORT" -u "$a" send "$b" "second one"
	assert_success

	MYCHAT_PASSWORD=pb run mc -p "$PORT" -u "$b" recv
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_regex "${lines[0]}" "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z $a first$"
	assert_regex "${lines[1]}" "^[0-9T:.-]+Z $a second one$"

	# Printed means ACKed: nothing is waiting any more.
	MYCHAT_PASSWORD=pb run mc -p "$PORT" -u "$b" recv
	assert_success
	assert_output ''
	login_on chk "$b" pb
	assert_regex "$LAST_REPLY" "^200 welcome $b, 0 waiting$"
}

@test "send to an unknown user: exit 6, the 404 reply on stderr" {
	local a
	a=$(uniq_name a)
	account "$a" pa

	MYCHAT_PASSWORD=pa run --separate-stderr mc -p "$PORT" -u "$a" \
	    send nosuchuser "hi"
	assert_failure 6
	assert_output ''
	assert_equal "$stderr" "404 no such user nosuchuser"
}

@test "wrong password: exit 5 with the 401 line; -P file works" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=nope run --separate-stderr mc -p "$PORT" -u "$a" \
	    send "$b" "hi"
	assert_failure 5
	assert_equal "$stderr" "401 bad name or password"

	printf 'pa\n' >"$BATS_TEST_TMPDIR/pw"
	run mc -p "$PORT" -u "$a" -P "$BATS_TEST_TMPDIR/pw" send "$b" "via file"
	assert_success
	MYCHAT_PASSWORD=pb run mc -p "$PORT" -u "$b" recv
	assert_output --regexp "^[^ ]+ $a via file$"
}

@test "no password and no terminal: exit 1 without connecting" {
	run setsid -w "$MYCHAT" -p "$PORT" -u someone send other "hi" </dev/null
	assert_failure 1
	assert_output --partial 'no password'
}

@test "usage errors exit 1" {
	run mc -p "$PORT" send bob hi
	assert_failure 1
	MYCHAT_PASSWORD=x run mc -p "$PORT" -u alice send bob
	assert_failure 1
	MYCHAT_PASSWORD=x run mc -p 0 -u alice send bob hi
	assert_failure 1
	MYCHAT_PASSWORD=x run mc -t abc -u alice recv
	assert_failure 1
	run mc -h
	assert_success
	assert_output --partial 'usage: mychat'
}

@test "stdin '-': a multi-line message round-trips byte for byte" {
	local a b text
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb
	# Newlines, a backslash, a literal "\n", a TAB, UTF-8, trailing blanks.
	text=$'first line\nsecond \\ line with \\n literal\n\ttabbed \xc3\xa9t\xc3\xa9  \n\nlast'
	printf '%s\n' "$text" >"$BATS_TEST_TMPDIR/msg"

	MYCHAT_PASSWORD=pa run mc -p "$PORT" -u "$a" send "$b" - \
	    <"$BATS_TEST_TMPDIR/msg"
	assert_success

	# On the wire: one line, newline as \n and backslash as \\.
	login_on raw "$b" pb
	send raw "HISTORY $a 1"
	expect_reply raw 200 '^200 1 messages'
	assert_regex "${REPLY_LINES[0]}" "^200-[0-9]+ $a $b [^ ]+ first line\\\\nsecond \\\\\\\\ line with \\\\\\\\n literal\\\\n	tabbed été  \\\\n\\\\nlast$"
	conn_close raw

	MYCHAT_PASSWORD=pb mc -p "$PORT" -u "$b" recv --unescape \
	    >"$BATS_TEST_TMPDIR/out"
	sed -i "1s/^[^ ]* $a //" "$BATS_TEST_TMPDIR/out"
	cmp "$BATS_TEST_TMPDIR/msg" "$BATS_TEST_TMPDIR/out"
}

@test "recv without --unescape keeps one line per message" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb
	printf 'one\ntwo\n' | MYCHAT_PASSWORD=pa mc -p "$PORT" -u "$a" \
	    send "$b" -
	MYCHAT_PASSWORD=pb run mc -p "$PORT" -u "$b" recv
	assert_success
	assert_output --regexp "^[^ ]+ $a one\\\\ntwo$"
}

@test "an empty or too long message is refused locally (exit 1)" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb
	MYCHAT_PASSWORD=pa run mc -p "$PORT" -u "$a" send "$b" - </dev/null
	assert_failure 1
	assert_output --partial 'empty'
	filler 70000 >"$BATS_TEST_TMPDIR/big"
	MYCHAT_PASSWORD=pa run mc -p "$PORT" -u "$a" send "$b" - \
	    <"$BATS_TEST_TMPDIR/big"
	assert_failure 1
	assert_output --partial 'too long'
	# Just under the limit goes through.
	filler 65000 >"$BATS_TEST_TMPDIR/big"
	MYCHAT_PASSWORD=pa run mc -p "$PORT" -u "$a" send "$b" - \
	    <"$BATS_TEST_TMPDIR/big"
	assert_success
	MYCHAT_PASSWORD=pb run mc -p "$PORT" -u "$b" recv
	assert_success
	assert_equal "${#output}" $((65000 + 24 + 1 + ${#a} + 1))
}

@test "recv --follow prints new messages as they come and ACKs them" {
	local a b deadline
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb
	login_on sender "$a" pa
	send sender "TO $b"
	expect_reply sender 503

	MYCHAT_PASSWORD=pb "$MYCHAT" -p "$PORT" -u "$b" recv --follow \
	    >"$BATS_TEST_TMPDIR/follow" 2>&1 3>&- &
	BG_PID=$!
	# Once recv is logged in, the peer is online.
	deadline=$((SECONDS + 30))
	while :; do
		send sender "TO $b"
		recv sender
		[[ $LINE == "200 $b is online" ]] && break
		((SECONDS < deadline)) || fail "recv --follow never logged in"
		sleep 0.05
	done
	send sender "MSG live one"
	expect_reply sender 250 'delivered$'
	# recv ACKs it after printing: the sender gets the receipt.
	expect_push sender "^ACKED [0-9]+ $b$"
	grep -q " $a live one$" "$BATS_TEST_TMPDIR/follow"
	kill "$BG_PID"
	wait "$BG_PID" || true
	BG_PID=

	login_on chk "$b" pb
	assert_regex "$LAST_REPLY" "^200 welcome $b, 0 waiting$"
}

@test "recv --follow survives a server restart" {
	local a b dir port deadline
	a=$(uniq_name a)
	b=$(uniq_name b)
	start_server
	dir=$SERVER_DIR
	port=$PORT
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=pb "$MYCHAT" -p "$port" -u "$b" recv --follow \
	    >"$BATS_TEST_TMPDIR/follow" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	BG_PID=$!
	MYCHAT_PASSWORD=pa mc -p "$port" -u "$a" send "$b" "before"
	deadline=$((SECONDS + 30))
	until grep -q " $a before$" "$BATS_TEST_TMPDIR/follow"; do
		((SECONDS < deadline)) || fail "recv --follow printed nothing"
		sleep 0.05
	done

	stop_server
	deadline=$((SECONDS + 30))
	until grep -q 'reconnecting' "$BATS_TEST_TMPDIR/err"; do
		((SECONDS < deadline)) || fail "$(cat "$BATS_TEST_TMPDIR/err")"
		sleep 0.05
	done
	MYCHAT_PASSWORD=pa run mc -p "$port" -u "$a" send "$b" "while down"
	assert_failure 2
	start_server --dir "$dir" --port "$port"
	MYCHAT_PASSWORD=pa mc -p "$port" -u "$a" send "$b" "after"
	deadline=$((SECONDS + 60))
	until grep -q " $a after$" "$BATS_TEST_TMPDIR/follow"; do
		((SECONDS < deadline)) || fail "$(cat "$BATS_TEST_TMPDIR/err")"
		sleep 0.05
	done
	kill "$BG_PID"
	wait "$BG_PID" || true
	BG_PID=
	run cat "$BATS_TEST_TMPDIR/follow"
	assert_equal "${#lines[@]}" 2
}

@test "local log: one file per account and peer, both directions" {
	local a b la lb
	a=$(uniq_name A)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb
	MYCHAT_PASSWORD=pa mc -p "$PORT" -u "$a" send "$b" "to b"
	MYCHAT_PASSWORD=pb mc -p "$PORT" -u "$b" send "$a" "to a"
	MYCHAT_PASSWORD=pb mc -p "$PORT" -u "$b" recv >/dev/null

	la=$XDG_DATA_HOME/mychat/${a,,}/${b,,}.log
	lb=$XDG_DATA_HOME/mychat/${b,,}/${a,,}.log
	[[ -f $la ]] || fail "no $la"
	[[ -f $lb ]] || fail "no $lb"
	run cat "$la"
	assert_line --regexp "^[0-9T:.-]+Z #[0-9]+ $a: to b$"
	run cat "$lb"
	assert_line --index 0 --regexp "^[0-9T:.-]+Z #[0-9]+ $b: to a$"
	assert_line --index 1 --regexp "^[0-9T:.-]+Z #[0-9]+ $a: to b$"
}

@test "a server that never answers: timeout, exit 3" {
	fake_server 'cat >/dev/null'
	MYCHAT_PASSWORD=x run mc -t 1 -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 3
	assert_output --partial 'no greeting'
}

@test "a server that greets, then never answers: timeout, exit 3" {
	fake_server "printf '200 fake mychat 0 ready\\r\\n'; cat >/dev/null"
	MYCHAT_PASSWORD=x run mc -t 1 -p "$FAKE_PORT" -u alice recv
	assert_failure 3
	assert_output --partial 'no reply'
}

@test "a server that sends garbage: protocol error, exit 4" {
	fake_server "printf 'HTTP/1.1 400 Bad Request\\r\\n\\r\\n'; cat >/dev/null"
	MYCHAT_PASSWORD=x run mc -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 4
	assert_output --partial 'not a mychat server'
}

@test "a server that sends binary junk after the greeting: exit 4" {
	fake_server "printf '200 fake ready\\r\\n\\001\\002\\377\\000junk\\r\\n'; cat >/dev/null"
	MYCHAT_PASSWORD=x run mc -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 4
	assert_output --partial 'garbage'
}

@test "a server that sends an endless line: exit 4, bounded memory" {
	fake_server "printf '200 fake ready\\r\\n'; head -c 300000 /dev/zero | tr '\\0' x; cat >/dev/null"
	MYCHAT_PASSWORD=x run mc -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 4
	assert_output --partial 'too long'
}

@test "a server that closes in the middle of a line: exit 2" {
	fake_server "printf '200 fake mychat 0 ready\\r\\n'; read l; printf '200 welc'"
	MYCHAT_PASSWORD=x run mc -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 2
	assert_output --partial 'middle of a line'
}

@test "nothing listening: exit 2" {
	local port
	port=$(free_port)
	MYCHAT_PASSWORD=x run mc -p "$port" -H 127.0.0.1 -u alice send bob hi
	assert_failure 2
	assert_output --partial 'cannot connect'
}

@test "send resends with the same token after a lost connection" {
	local a b deadline
	a=$(uniq_name a)
	b=$(uniq_name b)
	account "$a" pa
	account "$b" pb
	command -v socat >/dev/null || skip "socat is not installed"
	# A relay to the real server. On the first connection it passes the
	# MSG line on and lets the server answer it, but hangs up on the
	# client instead of passing the 250 back; later connections pass
	# everything.
	FAKE_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/relay" <<RELAY
#!/bin/bash
if mkdir "$BATS_TEST_TMPDIR/first" 2>/dev/null; then
	exec 5<>/dev/tcp/127.0.0.1/$PORT
	cat <&5 &
	while IFS= read -r l; do
		if [[ \$l == *" MSG "* ]]; then
			kill \$! && wait \$!
			printf '%s\n' "\$l" >&5
			IFS= read -r -t 60 reply <&5
			printf '%s\n' "\$reply" >"$BATS_TEST_TMPDIR/swallowed"
			exit 0
		fi
		printf '%s\n' "\$l" >&5
	done
	exit 0
fi
exec socat - TCP:127.0.0.1:$PORT
RELAY
	chmod +x "$BATS_TEST_TMPDIR/relay"
	socat TCP-LISTEN:"$FAKE_PORT",bind=127.0.0.1,reuseaddr,fork \
	    EXEC:"$BATS_TEST_TMPDIR/relay" </dev/null >/dev/null 2>&1 3>&- &
	FAKE_PID=$!
	deadline=$((SECONDS + 30))
	until proc_listens "$FAKE_PID" "$FAKE_PORT"; do
		((SECONDS < deadline)) || fail "relay not listening"
		sleep 0.02
	done

	MYCHAT_PASSWORD=pa run mc -v -p "$FAKE_PORT" -u "$a" send "$b" "once"
	assert_success
	assert_output --partial 'sending again (1 of 3)'
	assert_line --regexp '^250 [0-9]+ already stored$'
	# The server did store it the first time, and only then.
	run cat "$BATS_TEST_TMPDIR/swallowed"
	assert_output --regexp '^250 [0-9]+ queued'
	MYCHAT_PASSWORD=pb run mc -p "$PORT" -u "$b" recv
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_output --regexp " $a once$"
}
