#!/usr/bin/env bats
#
# t/client-tls.bats: TLS in the mychat client (issue 6): --tls to the
# implicit-TLS port, automatic STARTTLS on the plain port, certificate and
# host name verification (--ca, the system store, --insecure), --starttls
# and --no-tls, a server without TLS, reconnecting over TLS, and fake
# servers that stall the handshake or inject data after 220.
#
# As in t/tls.bats, a throwaway CA, a second ("wrong") CA and server
# certificates are made with openssl in setup_file: "server" is valid for
# localhost, 127.0.0.1 and ::1; "other" only for chat.example.org.

load lib/common
load lib/tls

bats_require_minimum_version 1.5.0

setup_file() {
	command -v openssl >/dev/null || skip "openssl is not installed"
	export CERTS=$BATS_FILE_TMPDIR/certs
	mkdir -p "$CERTS"
	make_ca ca "mychat test CA" || return 1
	make_ca wrongca "some other CA" || return 1
	make_cert server ca 0x1001 server || return 1
	make_cert other ca 0x1002 other 'DNS:chat.example.org' || return 1
}

setup() {
	export XDG_DATA_HOME=$BATS_TEST_TMPDIR/xdg
	unset MYCHAT_PASSWORD
	FAKE_PID=
	BG_PID=
}

teardown() {
	local p

	tm kill-server 2>/dev/null || true
	for p in $FAKE_PID $BG_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	mychat_teardown
}

# Run the client; never let a hang hang the test suite (124 = hung).
mc() {
	timeout 60 "$MYCHAT" "$@"
}

# Start mychatd with a TLS port and certificate $TLS_NAME (default
# "server"); extra mychatd arguments in $@. Sets TLS_PORT. Retries when
# the TLS port was taken (mychatd then runs without it).
tls_start_server() {
	local attempt name=${TLS_NAME:-server} deadline

	for attempt in 1 2 3 4 5; do
		TLS_PORT=$(free_port) || return 1
		start_server --tls-port "$TLS_PORT" \
		    --tls-cert "$CERTS/$name.pem" --tls-key "$CERTS/$name.key" \
		    "$@" || return 1
		deadline=$((SECONDS + MYCHAT_START_TIMEOUT))
		while ! proc_listens "$SERVER_PID" "$TLS_PORT"; do
			if grep -q ":$TLS_PORT: Address already in use" \
			    "$SERVER_LOG" || ((SECONDS >= deadline)); then
				break
			fi
			sleep 0.02
		done
		proc_listens "$SERVER_PID" "$TLS_PORT" && return 0
		stop_server || return 1
	done
	fail "mychatd: no free TLS port after 5 attempts"
}

# Register account $1 with password $2 over a raw (clear) connection.
account() {
	register_on reg "$1" "$2"
	conn_close reg
}

# Account $1 with password $2 must have exactly $3 messages waiting
# (checked with a raw LOGIN in clear; not for require-tls servers).
waiting_is() {
	login_on chk "$1" "$2"
	conn_close chk
	assert_regex "$LAST_REPLY" "^200 welcome $1, $3 waiting$"
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

@test "--tls --ca: send and recv over the implicit-TLS port, by name and by address" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	tls_start_server
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=pa run mc -v --tls --ca "$CERTS/ca.pem" \
	    -H localhost -p "$TLS_PORT" -u "$a" send "$b" "over tls"
	assert_success
	assert_line --regexp '^mychat: TLS: TLSv1\.[23] .*, certificate verified$'
	assert_line --regexp '^250 [0-9]+ queued'
	refute_output --partial WARNING

	MYCHAT_PASSWORD=pa run mc -v --tls --ca "$CERTS/ca.pem" \
	    -H 127.0.0.1 -p "$TLS_PORT" -u "$a" send "$b" "by address"
	assert_success
	assert_line --regexp '^mychat: TLS: TLSv1\.[23] .*, certificate verified$'

	MYCHAT_PASSWORD=pb run --separate-stderr mc -v --tls \
	    --ca "$CERTS/ca.pem" -H 127.0.0.1 -p "$TLS_PORT" -u "$b" recv
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp "^[0-9T:.-]+Z $a over tls$"
	assert_line --index 1 --regexp "^[0-9T:.-]+Z $a by address$"
	[[ $stderr == *"mychat: TLS: TLSv1."*"certificate verified"* ]] ||
	    fail "no TLS line on stderr: $stderr"
	waiting_is "$b" pb 0
}

@test "the plain port: automatic STARTTLS, so a require-tls server accepts the login" {
	local a b conf
	a=$(uniq_name a)
	b=$(uniq_name b)
	conf=$BATS_TEST_TMPDIR/mychatd.conf
	printf 'tls-cert %s\ntls-key %s\nrequire-tls yes\n' \
	    "$CERTS/server.pem" "$CERTS/server.key" >"$conf"
	start_server -c "$conf"

	# The server takes no password in clear...
	conn_open p
	send p "REGISTER $a pa"
	expect_reply p 530 '^530 encryption required'
	conn_close p

	# ...yet the interactive client registers (STARTTLS, then REGISTER).
	run timeout 60 "$MYCHAT" --ca "$CERTS/ca.pem" -p "$PORT" 127.0.0.1 \
	    < <(printf 'n\n%s\npa\npa\n' "$a")
	assert_success
	assert_line --regexp '^Encrypted: TLSv1\.[23] .*, certificate verified\.$'
	assert_line "Account $a created; you are logged in. Type /help for help."
	refute_output --partial 'Not encrypted'
	run timeout 60 "$MYCHAT" --ca "$CERTS/ca.pem" -p "$PORT" 127.0.0.1 \
	    < <(printf 'n\n%s\npb\npb\n' "$b")
	assert_success
	assert_line --partial "Account $b created"

	# send and recv, no TLS option at all but the CA
	MYCHAT_PASSWORD=pa run mc -v --ca "$CERTS/ca.pem" -p "$PORT" \
	    -u "$a" send "$b" "through starttls"
	assert_success
	assert_line --regexp '^mychat: TLS: TLSv1\.[23] .*, certificate verified$'
	assert_line --regexp '^250 [0-9]+ queued'
	MYCHAT_PASSWORD=pb run --separate-stderr mc --ca "$CERTS/ca.pem" \
	    -p "$PORT" -u "$b" recv
	assert_success
	assert_output --regexp "^[0-9T:.-]+Z $a through starttls$"
	assert_equal "$stderr" ''

	# The same client with --no-tls is refused: the above was encrypted.
	MYCHAT_PASSWORD=pa run mc -v --no-tls -p "$PORT" -u "$a" send "$b" x
	assert_failure 8
	assert_line 'mychat: not encrypted: --no-tls'
	assert_line '530 encryption required, use STARTTLS'
	# --starttls insists on it, and gets it
	MYCHAT_PASSWORD=pb run mc --starttls --ca "$CERTS/ca.pem" \
	    -p "$PORT" -u "$b" recv
	assert_success
	assert_output ''
}

@test "a CA that did not sign the certificate: exit 9, the reason, nothing sent" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	tls_start_server
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=pa run mc --tls --ca "$CERTS/wrongca.pem" \
	    -p "$TLS_PORT" -H 127.0.0.1 -u "$a" send "$b" "must not go"
	assert_failure 9
	assert_output 'mychat: TLS error: certificate verification failed: unable to get local issuer certificate (see --ca in mychat(1))'

	# STARTTLS: the 220 came, the handshake failed; no fallback to clear
	MYCHAT_PASSWORD=pa run mc -v --ca "$CERTS/wrongca.pem" \
	    -p "$PORT" -H 127.0.0.1 -u "$a" send "$b" "must not go"
	assert_failure 9
	assert_output 'mychat: TLS error: certificate verification failed: unable to get local issuer certificate (see --ca in mychat(1))'

	# no --ca: the system store does not know the test CA either
	MYCHAT_PASSWORD=pa run mc -p "$PORT" -u "$a" send "$b" "must not go"
	assert_failure 9
	assert_output --partial 'certificate verification failed'

	# interactive: the same, before any question about the account
	run timeout 60 "$MYCHAT" --ca "$CERTS/wrongca.pem" -p "$PORT" \
	    127.0.0.1 < <(printf 'l\n%s\npa\n' "$a")
	assert_failure 9
	assert_line --partial 'mychat: TLS error: certificate verification failed'
	refute_line --partial "Logged in"

	# none of these logged in, so nothing was sent
	run grep -c "event: login $a " "$SERVER_LOG"
	assert_output 0
	waiting_is "$b" pb 0
}

@test "a certificate for another host name is refused (name and address)" {
	local a
	a=$(uniq_name a)
	TLS_NAME=other tls_start_server
	account "$a" pa

	MYCHAT_PASSWORD=pa run mc --tls --ca "$CERTS/ca.pem" -H localhost \
	    -p "$TLS_PORT" -u "$a" recv
	assert_failure 9
	assert_output 'mychat: TLS error: certificate verification failed: hostname mismatch (the certificate is for another server)'

	MYCHAT_PASSWORD=pa run mc --ca "$CERTS/ca.pem" -H 127.0.0.1 \
	    -p "$PORT" -u "$a" recv
	assert_failure 9
	assert_output 'mychat: TLS error: certificate verification failed: IP address mismatch (the certificate is for another server)'

	run grep -c "event: login $a " "$SERVER_LOG"
	assert_output 0
}

@test "--insecure: any certificate goes, with a warning on every run" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	TLS_NAME=other tls_start_server
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=pa run mc -v --tls --insecure -p "$TLS_PORT" \
	    -u "$a" send "$b" "unverified"
	assert_success
	assert_line --index 0 "mychat: WARNING: --insecure: the server's certificate is not verified; anyone on the way can read and change this session, password included"
	assert_line --regexp '^mychat: TLS: TLSv1\.[23] .*, certificate NOT verified \(--insecure\)$'

	MYCHAT_PASSWORD=pb run --separate-stderr mc --insecure -p "$PORT" \
	    -u "$b" recv
	assert_success
	assert_output --regexp "^[0-9T:.-]+Z $a unverified$"
	assert_equal "$stderr" "mychat: WARNING: --insecure: the server's certificate is not verified; anyone on the way can read and change this session, password included"

	run mc --insecure --ca "$CERTS/ca.pem" -p "$PORT" 127.0.0.1
	assert_failure 1
	assert_output --partial 'exclude each other'
}

@test "a server without TLS: no STARTTLS offered, plain login; --starttls and --tls refuse" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	start_server
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=pa run mc -v -p "$PORT" -u "$a" send "$b" "in clear"
	assert_success
	assert_line 'mychat: not encrypted: the server does not offer STARTTLS'
	assert_line --regexp '^250 [0-9]+ queued'

	run timeout 60 "$MYCHAT" -p "$PORT" 127.0.0.1 \
	    < <(printf 'l\n%s\npa\n' "$a")
	assert_success
	assert_line 'Not encrypted: the server does not offer STARTTLS; the password goes in clear.'
	assert_line --partial "Logged in as $a"

	MYCHAT_PASSWORD=pb run mc --starttls -p "$PORT" -u "$b" recv
	assert_failure 9
	assert_output 'mychat: TLS error: the server does not offer STARTTLS: "454 TLS not available"'

	MYCHAT_PASSWORD=pb run mc --tls -p "$PORT" -u "$b" recv
	assert_failure 9
	assert_output --partial "wrong version number (is this the server's TLS port?"

	# neither of the refused runs got to log in
	waiting_is "$b" pb 1
}

@test "recv --follow over TLS reconnects (and redoes TLS) after a server restart" {
	local a b dir port tport deadline
	a=$(uniq_name a)
	b=$(uniq_name b)
	tls_start_server
	dir=$SERVER_DIR
	port=$PORT
	tport=$TLS_PORT
	account "$a" pa
	account "$b" pb

	MYCHAT_PASSWORD=pb "$MYCHAT" -v --tls --ca "$CERTS/ca.pem" \
	    -p "$tport" -u "$b" recv --follow \
	    >"$BATS_TEST_TMPDIR/follow" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	BG_PID=$!
	MYCHAT_PASSWORD=pa mc --ca "$CERTS/ca.pem" -p "$port" -u "$a" \
	    send "$b" "before"
	deadline=$((SECONDS + 30))
	until grep -q " $a before$" "$BATS_TEST_TMPDIR/follow"; do
		((SECONDS < deadline)) || fail "$(cat "$BATS_TEST_TMPDIR/err")"
		sleep 0.05
	done

	stop_server
	deadline=$((SECONDS + 30))
	until grep -q 'reconnecting' "$BATS_TEST_TMPDIR/err"; do
		((SECONDS < deadline)) || fail "$(cat "$BATS_TEST_TMPDIR/err")"
		sleep 0.05
	done
	start_server --dir "$dir" --port "$port" --tls-port "$tport" \
	    --tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server.key"
	deadline=$((SECONDS + MYCHAT_START_TIMEOUT))
	until proc_listens "$SERVER_PID" "$tport"; do
		((SECONDS < deadline)) || fail "TLS port $tport not back"
		sleep 0.02
	done
	MYCHAT_PASSWORD=pa mc --ca "$CERTS/ca.pem" -p "$port" -u "$a" \
	    send "$b" "after"
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
	# one handshake per connection
	run grep -c '^mychat: TLS: TLSv1\.[23] .*certificate verified$' \
	    "$BATS_TEST_TMPDIR/err"
	assert_output 2
}

# tmux on this test's own server socket, without the user's configuration
# (as in t/client-interactive.bats).
tm() {
	tmux -u -L "mychat-tls-test-$$-${BATS_TEST_NUMBER}" -f /dev/null "$@" 3>&-
}

# Wait until the screen of tmux session $1 matches the extended regex $2.
wait_screen() {
	local name=$1 re=$2 deadline=$((SECONDS + MYCHAT_TIMEOUT)) s

	while :; do
		s=$(tm capture-pane -p -J -t "$name")
		grep -Eq -- "$re" <<<"$s" && return 0
		if ((SECONDS >= deadline)); then
			fail "$(printf 'screen of %s does not show /%s/ after %s s:\n%s' \
			    "$name" "$re" "$MYCHAT_TIMEOUT" "$s")"
			return 1
		fi
		sleep 0.05
	done
}

# Type the line $2 and Enter into tmux session $1.
type_line() {
	tm send-keys -t "$1" -l -- "$2"
	tm send-keys -t "$1" Enter
}

@test "interactive on a terminal: STARTTLS, then again after a server restart (require-tls)" {
	local a b conf dir port
	command -v tmux >/dev/null || skip "tmux is not installed"
	export LC_ALL=C.UTF-8
	a=$(uniq_name a)
	b=$(uniq_name b)
	conf=$BATS_TEST_TMPDIR/mychatd.conf
	printf 'tls-cert %s\ntls-key %s\nrequire-tls yes\n' \
	    "$CERTS/server.pem" "$CERTS/server.key" >"$conf"
	start_server -c "$conf"
	dir=$SERVER_DIR
	port=$PORT
	run timeout 60 "$MYCHAT" --ca "$CERTS/ca.pem" -p "$port" 127.0.0.1 \
	    < <(printf 'n\n%s\npb\npb\n' "$b")
	assert_success

	tm new-session -d -s c -x 110 -y 40 \
	    "$(printf '%q ' "$MYCHAT" --ca "$CERTS/ca.pem" -p "$port" \
	    127.0.0.1); echo \"[exit \$?]\"; sleep 600"
	wait_screen c 'New account or log in\? \[n/l\]'
	type_line c n
	wait_screen c 'Name( \[[^]]*\])?: *$'
	type_line c "$a"
	wait_screen c 'Choose a password: *$'
	type_line c pa
	wait_screen c 'Repeat the password: *$'
	type_line c pa
	wait_screen c "Account $a created"
	wait_screen c '^Encrypted: TLSv1\.[23] .*, certificate verified\.$'
	type_line c "/to $b"
	wait_screen c "$b is offline"

	# The session comes back by itself: STARTTLS again, or the server
	# would refuse the login (530) and nothing could be stored.
	stop_server
	wait_screen c 'reconnecting in'
	start_server --dir "$dir" --port "$port" -c "$conf"
	wait_screen c "connected again to 127.0.0.1 port $port"
	type_line c "after the restart"
	wait_screen c '✓ #[0-9]+ "after the restart" stored'
	run tm capture-pane -p -J -t c
	refute_output --partial '530'
	refute_output --partial 'Not encrypted'
	tm kill-server

	MYCHAT_PASSWORD=pb run mc --ca "$CERTS/ca.pem" -p "$port" -u "$b" recv
	assert_success
	assert_output --regexp "^[0-9T:.-]+Z $a after the restart$"
}

@test "a server that never finishes the handshake: timeout, exit 3" {
	fake_server 'cat >/dev/null'
	MYCHAT_PASSWORD=x run mc -t 1 --tls --ca "$CERTS/ca.pem" \
	    -H 127.0.0.1 -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 3
	assert_output 'mychat: timed out waiting for the server: TLS handshake with 127.0.0.1 not done after 1 s'

	fake_server "printf '200 fake ready\\r\\n'; read -r l; printf '220 go ahead\\r\\n'; cat >/dev/null"
	MYCHAT_PASSWORD=x run mc -t 1 --ca "$CERTS/ca.pem" \
	    -H 127.0.0.1 -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 3
	assert_output --partial 'TLS handshake with 127.0.0.1 not done'
}

@test "STARTTLS: clear text injected after 220 or a broken handshake ends it, LOGIN never sent" {
	# 220 and a forged reply in one write (cat: bash's printf writes each
	# line on its own), so that they reach the client together
	printf '220 go ahead\r\n200 welcome alice, 0 waiting\r\n' \
	    >"$BATS_TEST_TMPDIR/inject"
	fake_server "printf '200 fake ready\\r\\n'; IFS= read -r l; printf '%s\\n' \"\$l\" >'$BATS_TEST_TMPDIR/first'; cat '$BATS_TEST_TMPDIR/inject'; cat >'$BATS_TEST_TMPDIR/rest'"
	MYCHAT_PASSWORD=x run mc --ca "$CERTS/ca.pem" -H 127.0.0.1 \
	    -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 4
	assert_output 'mychat: protocol error: the server sent more after 220 to STARTTLS, in clear'
	# the fake (socat) ends with the connection
	wait_exit "$FAKE_PID" 30 || fail "the fake server did not end"
	run cat "$BATS_TEST_TMPDIR/first"
	assert_output $'STARTTLS\r'
	run cat "$BATS_TEST_TMPDIR/rest"
	assert_output ''

	# a 220, then something that is not TLS
	fake_server "printf '200 fake ready\\r\\n'; IFS= read -r l; printf '220 go ahead\\r\\n'; head -c 5 >'$BATS_TEST_TMPDIR/rest2'; printf 'not tls at all\\r\\n'; cat >>'$BATS_TEST_TMPDIR/rest2'"
	MYCHAT_PASSWORD=x run mc --ca "$CERTS/ca.pem" -H 127.0.0.1 \
	    -p "$FAKE_PORT" -u alice send bob hi
	assert_failure 9
	assert_output --partial 'mychat: TLS error: TLS handshake failed'
	wait_exit "$FAKE_PID" 30 || fail "the fake server did not end"
	# the client sent a ClientHello (a TLS handshake record), no LOGIN
	run od -An -tx1 -N1 "$BATS_TEST_TMPDIR/rest2"
	assert_output ' 16'
	run grep -ac LOGIN "$BATS_TEST_TMPDIR/rest2"
	assert_output 0
}

@test "TLS option errors: exit 1 before connecting" {
	run mc --tls --no-tls -p 1 127.0.0.1
	assert_failure 1
	assert_output --partial 'exclude each other'
	run mc --no-tls --ca "$CERTS/ca.pem" -p 1 127.0.0.1
	assert_failure 1
	assert_output --partial 'make no sense with --no-tls'
	run mc --ca "$BATS_TEST_TMPDIR/none.pem" -p 1 127.0.0.1
	assert_failure 1
	assert_output "mychat: $BATS_TEST_TMPDIR/none.pem: No such file or directory"
	run mc --ca "$CERTS/ca.key" -p 1 127.0.0.1
	assert_failure 1
	assert_output --partial "ca.key: no usable CA certificate"
	run mc -h
	assert_success
	assert_output --partial '--tls       TLS from the first byte'
}
