#!/usr/bin/env bats
#
# t/tls.bats: TLS on the server side (issue 6): the implicit-TLS port, STARTTLS
# on the plain port, certificate verification, the TLS 1.2 floor, the
# RFC 3207 pipelining attack, garbage instead of a ClientHello, require-tls,
# and the certificate reload on SIGHUP.
#
# A throwaway CA, a second ("wrong") CA and server certificates for
# 127.0.0.1/::1/localhost are made with openssl in setup_file. Sessions over
# TLS go through t/tools/starttls (built by "make check"): it listens on an
# ephemeral port of 127.0.0.1, and the test talks to it with the /dev/tcp
# helpers of lib/common, so send/recv/expect_reply work unchanged. Its stderr
# says when the handshake is done and which certificate the server showed.
# Verification and protocol versions are checked with openssl s_client.

load lib/common
load lib/tls

: "${STARTTLS_TOOL:=$TOP_BUILDDIR/t/tools/starttls}"

setup_file() {
	export CERTS=$BATS_FILE_TMPDIR/certs
	mkdir -p "$CERTS"
	make_ca ca "mychat test CA" || return 1
	make_ca wrongca "some other CA" || return 1
	make_cert server ca 0x1001 localhost || return 1
	make_cert server2 ca 0x2002 mychat-reloaded || return 1
	# an empty OpenSSL configuration: only mychatd's own settings count
	: >"$CERTS/empty.cnf"
}

teardown() {
	local p

	rm -f "$BATS_TEST_TMPDIR/stall"	# a held fsync would hold the stop
	mychat_teardown
	for p in "${TOOL_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	TOOL_PIDS=()
}

TOOL_PIDS=()
declare -A TOOL_ERR=()
declare -A TOOL_PID=()

# Start mychatd with a TLS port and the test certificate (extra mychatd
# arguments in $@); sets TLS_PORT too. Retries when the TLS port was taken
# (mychatd then runs without it, so start_server alone cannot tell).
tls_start_server() {
	local attempt cert=${TLS_CERT:-$CERTS/server.pem}
	local key=${TLS_KEY:-$CERTS/server.key} deadline

	for attempt in 1 2 3 4 5; do
		TLS_PORT=$(free_port) || return 1
		start_server --tls-port "$TLS_PORT" --tls-cert "$cert" \
		    --tls-key "$key" "$@" || return 1
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

# Build check: the helper must exist.
need_tool() {
	[[ -x $STARTTLS_TOOL ]] || {
		fail "$STARTTLS_TOOL is not built (make t/tools/starttls)"
		return 1
	}
}

# Connection $1 through t/tools/starttls with the arguments $2...: no
# greeting read. The tool's stderr goes to TOOL_ERR[$1].
tool_connect() {
	local name=$1 pf err deadline pid

	shift
	need_tool || return 1
	pf=$BATS_TEST_TMPDIR/tool.$name.port
	err=$BATS_TEST_TMPDIR/tool.$name.err
	rm -f "$pf"
	"$STARTTLS_TOOL" -l "$pf" "$@" </dev/null >/dev/null 2>"$err" 3>&- &
	pid=$!
	TOOL_PIDS+=("$pid")
	TOOL_PID[$name]=$pid
	TOOL_ERR[$name]=$err
	deadline=$((SECONDS + MYCHAT_TIMEOUT))
	until [[ -s $pf ]]; do
		if ! proc_alive "$pid" || ((SECONDS >= deadline)); then
			fail "starttls tool for $name did not start: $(cat "$err")"
			return 1
		fi
		sleep 0.02
	done
	conn_open_raw "$name" "$(cat "$pf")"
}

# Wait until the stderr of the tool of connection $1 matches regex $2.
tool_wait() {
	local name=$1 re=$2 deadline=$((SECONDS + MYCHAT_TIMEOUT))

	until grep -Eq -- "$re" "${TOOL_ERR[$name]}"; do
		if ((SECONDS >= deadline)); then
			fail "$(printf 'tool %s: no /%s/ on its stderr within %s s:\n%s' \
			    "$name" "$re" "$MYCHAT_TIMEOUT" \
			    "$(cat "${TOOL_ERR[$name]}")")"
			return 1
		fi
		sleep 0.02
	done
	grep -E -- "$re" "${TOOL_ERR[$name]}" | head -n 1
}

# Wait until the tool of connection $1 has exited; its status in TOOL_STATUS.
tool_exit() {
	local pid=${TOOL_PID[$1]}

	wait_exit "$pid" "$MYCHAT_TIMEOUT" ||
	    { fail "starttls tool for $1 did not exit"; return 1; }
	TOOL_STATUS=$WAIT_STATUS
}

# Connection $1 over implicit TLS, verified against the test CA; greeting
# in GREETING.
tls_open() {
	tool_connect "$1" -I -c "$CERTS/ca.pem" -n "${TLS_NAME:-127.0.0.1}" \
	    127.0.0.1 "$TLS_PORT" || return 1
	recv "$1" || return 1
	GREETING=$LINE
	[[ $GREETING =~ ^200\  ]] || { fail "bad greeting on $1: $GREETING"; return 1; }
	tool_wait "$1" '^starttls: TLS established'
}

# Connection $1 on the plain port, then STARTTLS (extra tool args in $2...).
starttls_open() {
	local name=$1

	shift
	tool_connect "$name" -c "$CERTS/ca.pem" "$@" 127.0.0.1 "$PORT" ||
	    return 1
	expect_line "$name" '^200 ' || return 1
	send "$name" STARTTLS || return 1
	expect_line "$name" '^220 go ahead$' || return 1
	tool_wait "$name" '^starttls: TLS established'
}

# The server must close connection $1, whatever bytes come first (a TLS
# alert is binary, with NULs and no newline).
expect_closed() {
	local name=$1 deadline=$((SECONDS + MYCHAT_TIMEOUT)) rc junk

	conn_fd "$name" || return 1
	while ((SECONDS < deadline)); do
		rc=0
		IFS= read -r -d '' -t 1 -u "$FD" junk || rc=$?
		if ((rc == 1)); then
			echo "$name: EOF"
			return 0
		fi
	done
	fail "$name: the server did not close the connection within $MYCHAT_TIMEOUT s"
}

# A config file with the TLS settings of the test plus lines $@; path in CONF.
write_conf() {
	CONF=$BATS_TEST_TMPDIR/mychatd.conf
	{
		printf 'tls-cert %s\ntls-key %s\n' "$CERTS/server.pem" \
		    "$CERTS/server.key"
		printf '%s\n' "$@"
	} >"$CONF"
}

@test "implicit TLS: REGISTER, LOGIN, and messages both ways with a plain peer" {
	local a b

	a=$(uniq_name a)
	b=$(uniq_name b)
	tls_start_server
	tls_open t
	assert_regex "$GREETING" '^200 [^ ]+ mychat [^ ]+ ready$'
	run tool_wait t 'serial=1001'
	assert_success
	assert_output --regexp 'TLSv1\.[23] .*subject=/CN=localhost serial=1001$'
	send t "REGISTER $a pw-$a"
	expect_reply t 201 "^201 $a registered$"
	register_on p "$b" "pw-$b"

	send t "TO $b"
	expect_reply t 200 "^200 $b is online$"
	send t "MSG secret over TLS"
	expect_reply t 250
	expect_push p "^MSG [0-9]+ $a [^ ]+ secret over TLS$"

	send p "TO $a"
	expect_reply p 200 "^200 $a is online$"
	send p "MSG reply in clear"
	expect_reply p 250
	expect_push t "^MSG [0-9]+ $b [^ ]+ reply in clear$"

	# LOGIN over a second TLS session: the account and its history
	tls_open t2
	send t2 "LOGIN $a pw-$a"
	expect_reply t2 200 "^200 welcome $a, [0-9]+ waiting$"
	send t2 "HISTORY $b"
	expect_reply t2 200
	printf '%s\n' "${REPLY_LINES[@]}" | grep -q 'secret over TLS' ||
	    fail "HISTORY over TLS lacks the message"
	send t2 "WHO"
	expect_reply t2 200 '^200 [0-9]+ online$'
	printf '%s\n' "${REPLY_LINES[@]}" | grep -qx "200-$a" ||
	    fail "WHO does not list $a"
}

@test "implicit TLS: HELP does not offer STARTTLS, and STARTTLS is 454" {
	tls_start_server
	tls_open t
	send t "HELP"
	expect_reply t 200 '^200 end of HELP$'
	send t "STARTTLS"
	expect_reply t 454 '^454 already encrypted$'
	send t "PING still-here"
	expect_reply t 200 '^200 PONG still-here$'
}

@test "openssl s_client: the test CA and the right name verify; a wrong CA or name fails" {
	local q='PING s_client\r\nQUIT\r\n'

	tls_start_server
	# the line session of doc/tls.md
	run bash -c "printf '$q' | timeout $MYCHAT_TIMEOUT openssl s_client \
	    -quiet -connect 127.0.0.1:$TLS_PORT -CAfile '$CERTS/ca.pem' \
	    -verify_return_error -verify_hostname localhost 2>/dev/null"
	assert_line --index 0 --regexp '^200 [^ ]+ mychat [^ ]+ ready'
	assert_line --index 1 $'200 PONG s_client\r'
	assert_line --index 2 $'221 bye\r'

	for v in "-verify_hostname localhost" "-verify_ip 127.0.0.1"; do
		run bash -c "echo | timeout $MYCHAT_TIMEOUT openssl s_client \
		    -brief -connect 127.0.0.1:$TLS_PORT -CAfile '$CERTS/ca.pem' \
		    -verify_return_error $v 2>&1"
		assert_success
		assert_line 'Verification: OK'
	done

	run bash -c "echo | timeout $MYCHAT_TIMEOUT openssl s_client \
	    -brief -connect 127.0.0.1:$TLS_PORT -CAfile '$CERTS/wrongca.pem' \
	    -verify_return_error 2>&1"
	assert_failure
	assert_output --partial 'certificate verify failed'
	refute_line 'Verification: OK'

	run bash -c "echo | timeout $MYCHAT_TIMEOUT openssl s_client \
	    -brief -connect 127.0.0.1:$TLS_PORT -CAfile '$CERTS/ca.pem' \
	    -verify_return_error -verify_hostname wrong.example 2>&1"
	assert_failure
	assert_output --partial 'hostname mismatch'

	# the same through the test tool, which the other tests rely on
	tool_connect w -I -c "$CERTS/wrongca.pem" 127.0.0.1 "$TLS_PORT"
	expect_closed w
	tool_exit w
	assert_equal "$TOOL_STATUS" 3
	grep -q 'unable to get local issuer certificate' "${TOOL_ERR[w]}" ||
	    fail "tool: $(cat "${TOOL_ERR[w]}")"
	# and the server survived all that
	conn_open p
	send p "PING"
	expect_reply p 200 '^200 PONG'
}

@test "TLS 1.0 and 1.1 are refused with a protocol_version alert; 1.2 and 1.3 work" {
	local v out

	# An empty OpenSSL configuration for the server, so the floor tested
	# is mychatd's own, not a distribution default.
	OPENSSL_CONF=$CERTS/empty.cnf tls_start_server
	for v in tls1 tls1_1; do
		out=$(echo | OPENSSL_CONF=$CERTS/empty.cnf timeout \
		    "$MYCHAT_TIMEOUT" openssl s_client "-$v" \
		    -cipher 'DEFAULT:@SECLEVEL=0' -connect "127.0.0.1:$TLS_PORT" \
		    -CAfile "$CERTS/ca.pem" 2>&1) && {
			fail "$(printf 'the server accepted -%s:\n%s' "$v" "$out")"
			return 1
		}
		echo "$out"
		if [[ $out == *'no protocols available'* ||
		    $out == *'unknown option'* ]]; then
			skip "this openssl cannot offer -$v"
		fi
		# the server itself refused the version (alert 70)
		[[ $out == *'alert protocol version'* ]] ||
		    fail "-$v: no protocol_version alert from the server"
	done
	for v in tls1_2 tls1_3; do
		run bash -c "echo | timeout $MYCHAT_TIMEOUT openssl s_client \
		    -brief -$v -connect 127.0.0.1:$TLS_PORT \
		    -CAfile '$CERTS/ca.pem' -verify_return_error 2>&1"
		assert_success
		assert_line "Protocol version: TLSv1.${v#tls1_}"
	done
}

@test "STARTTLS: offered by HELP, 220 go ahead, handshake, the session starts over" {
	local a b

	a=$(uniq_name a)
	b=$(uniq_name b)
	tls_start_server
	conn_open p
	send p "HELP"
	expect_reply p 200 '^200 end of HELP \(STARTTLS available\)$'
	printf '%s\n' "${REPLY_LINES[@]}" | grep -q '^200-STARTTLS ' ||
	    fail "HELP does not list STARTTLS"
	send p "REGISTER $b pw-$b"
	expect_reply p 201

	# log in in clear, then upgrade: the TLS session starts logged out
	tool_connect s -c "$CERTS/ca.pem" 127.0.0.1 "$PORT"
	expect_line s '^200 [^ ]+ mychat [^ ]+ ready$'
	send s "REGISTER $a pw-$a"
	expect_reply s 201 "^201 $a registered$"
	send s "STARTTLS"
	expect_line s '^220 go ahead$'
	run tool_wait s '^starttls: TLS established'
	assert_success
	assert_output --regexp 'TLSv1\.[23] .*serial=1001$'
	send s "WHO"
	expect_reply s 401 '^401 log in first$'
	send s "LOGIN $a pw-$a"
	expect_reply s 200 "^200 welcome $a, [0-9]+ waiting$"
	send s "HELP"
	expect_reply s 200 '^200 end of HELP$'
	send s "STARTTLS"
	expect_reply s 454 '^454 already encrypted$'

	send s "TO $b"
	expect_reply s 200 "^200 $b is online$"
	send s "MSG after STARTTLS"
	expect_reply s 250
	expect_push p "^MSG [0-9]+ $a [^ ]+ after STARTTLS$"
	send p "TO $a"
	expect_reply p 200
	send p "MSG back to the upgraded session"
	expect_reply p 250
	expect_push s "^MSG [0-9]+ $b [^ ]+ back to the upgraded session$"
}

@test "STARTTLS without a certificate: 454 TLS not available, not in HELP" {
	start_server
	conn_open p
	send p "HELP"
	expect_reply p 200 '^200 end of HELP$'
	printf '%s\n' "${REPLY_LINES[@]}" | grep -q '^200-STARTTLS' &&
	    fail "HELP lists STARTTLS with no TLS configured"
	send p "STARTTLS"
	expect_reply p 454 '^454 TLS not available$'
	send p "PING plain"
	expect_reply p 200 '^200 PONG plain$'
}

@test "STARTTLS pipelining: commands sent along with STARTTLS are discarded" {
	local u v

	u=$(uniq_name u)
	v=$(uniq_name v)
	tls_start_server
	register_on p "$u" "pw-$u"

	# "STARTTLS\r\nREGISTER v ...\r\nPING leak\r\n" in one segment. The
	# tool fails (exit 4) on any clear byte after the 220, and the
	# handshake would fail on a clear reply to the injected commands.
	tool_connect s -c "$CERTS/ca.pem" -x "REGISTER $v pw-$v" \
	    -x "PING leak" 127.0.0.1 "$PORT"
	expect_line s '^200 '
	send s "STARTTLS"
	expect_line s '^220 go ahead$'
	tool_wait s '^starttls: TLS established'
	# no reply to the injected commands over TLS either
	send s "PING first"
	expect_line s '^200 PONG first$'
	# the injected REGISTER did not run: the name is free
	send s "LOGIN $v pw-$v"
	expect_reply s 401 '^401 bad name or password$'
	conn_open q
	send q "REGISTER $v other-$v"
	expect_reply q 201 "^201 $v registered$"

	# an injected LOGIN must not log the TLS session in
	tool_connect s2 -c "$CERTS/ca.pem" -x "LOGIN $u pw-$u" \
	    127.0.0.1 "$PORT"
	expect_line s2 '^200 '
	send s2 "STARTTLS"
	expect_line s2 '^220 go ahead$'
	tool_wait s2 '^starttls: TLS established'
	send s2 "WHO"
	expect_line s2 '^401 log in first$'
}

@test "STARTTLS on a session receiving pushes: nothing follows the 220 in clear" {
	local u p flood i

	u=$(uniq_name u)
	p=$(uniq_name p)
	# no login timeout: this test is about pushes only
	write_conf 'login-timeout 0'
	tls_start_server -c "$CONF"
	# -d: the tool drops the pushes it gets in clear (bash would read
	# the flood too slowly) and says so on stderr
	tool_connect s -d -c "$CERTS/ca.pem" 127.0.0.1 "$PORT"
	expect_line s '^200 '
	send s "REGISTER $u pw-$u"
	expect_reply s 201
	register_on p "$p" "pw-$p"
	send p "TO $u"
	expect_reply p 200 "^200 $u is online$"

	# a stream of messages to u, still flowing when u asks for STARTTLS
	flood=$BATS_TEST_TMPDIR/flood
	for ((i = 1; i <= 20000; i++)); do
		printf 'MSG flood %d\r\n' "$i"
	done >"$flood"
	cat "$flood" >&"${MYCHAT_FD[p]}" &
	TOOL_PIDS+=($!)
	tool_wait s '^starttls: first push dropped'
	send s "STARTTLS"
	expect_line s '^220 go ahead$'
	# the tool exits 4 if clear bytes follow the 220
	run tool_wait s '^starttls: (TLS established|.*in clear after the 220)'
	assert_output --partial 'TLS established'
	send s "WHO"
	expect_line s '^401 log in first$'
	# what was not pushed stays stored: u gets it after logging in again
	send s "LOGIN $u pw-$u"
	expect_reply s 200 "^200 welcome $u, [0-9]+ waiting$"
}

@test "STARTTLS on a connection older than login-timeout: time to log in again" {
	local u start i

	u=$(uniq_name u)
	write_conf 'login-timeout 8'
	tls_start_server -c "$CONF"
	register_on p "$u" "pw-$u"
	start=$SECONDS
	tool_connect s -c "$CERTS/ca.pem" 127.0.0.1 "$PORT"
	expect_line s '^200 '
	send s "LOGIN $u pw-$u"
	expect_reply s 200 "^200 welcome $u"
	# the precondition: this connection is older than login-timeout
	while ((SECONDS - start <= 9)); do
		send s "PING age"
		expect_reply s 200 '^200 PONG age$'
		sleep 1
	done
	send s "STARTTLS"
	expect_line s '^220 go ahead$'
	tool_wait s '^starttls: TLS established'
	# The upgraded session starts logged out, so the login timeout
	# applies again, but from the upgrade, not from the connect: it must
	# survive the next housekeeping ticks (one a second) and log in.
	for ((i = 0; i < 3; i++)); do
		send s "PING upgraded"
		expect_reply s 200 '^200 PONG upgraded$'
		sleep 1
	done
	send s "LOGIN $u pw-$u"
	expect_reply s 200 "^200 welcome $u"
}

@test "garbage instead of a ClientHello is dropped; other sessions go on" {
	local a b

	a=$(uniq_name a)
	b=$(uniq_name b)
	tls_start_server
	tls_open t
	send t "REGISTER $a pw-$a"
	expect_reply t 201
	register_on p "$b" "pw-$b"

	# a stalled handshake: a record header announcing 512 bytes, then 1
	conn_open_raw stall "$TLS_PORT"
	send_raw stall '\x16\x03\x01\x02\x00\x01'
	# plain text on the TLS port
	conn_open_raw g1 "$TLS_PORT"
	send_raw g1 'LOGIN %s pw-%s\r\n' "$a" "$a"
	expect_closed g1
	# a ClientHello record with a nonsense body
	conn_open_raw g2 "$TLS_PORT"
	send_raw g2 '\x16\x03\x01\x00\x08\x01\x00\x00\x04garbage!\r\n'
	expect_closed g2
	# binary junk (fixed bytes: random ones may look like an SSLv2 hello
	# announcing more than was sent, which the server rightly waits for)
	conn_open_raw g3 "$TLS_PORT"
	head -c 4096 /dev/zero | tr '\0' '\377' >&"${MYCHAT_FD[g3]}"
	expect_closed g3

	# the TLS and plain sessions, and new ones, are unaffected
	send t "TO $b"
	expect_reply t 200 "^200 $b is online$"
	send t "MSG still encrypted"
	expect_reply t 250
	expect_push p "^MSG [0-9]+ $a [^ ]+ still encrypted$"
	send p "TO $a"
	expect_reply p 200
	send p "MSG still plain"
	expect_reply p 250
	expect_push t "^MSG [0-9]+ $b [^ ]+ still plain$"
	tls_open t2
	send t2 "PING new-tls"
	expect_reply t2 200 '^200 PONG new-tls$'
	starttls_open s
	send s "PING new-starttls"
	expect_reply s 200 '^200 PONG new-starttls$'
	conn_open q
	send q "PING new-plain"
	expect_reply q 200 '^200 PONG new-plain$'
	proc_alive "$SERVER_PID" || fail "mychatd died"
}

@test "STARTTLS followed by garbage instead of a handshake: dropped, others unaffected" {
	tls_start_server
	conn_open p
	conn_open g
	send g "STARTTLS"
	expect_line g '^220 go ahead$'
	send_raw g 'PING after 220 in clear\r\n'
	expect_closed g
	send p "PING plain"
	expect_reply p 200 '^200 PONG plain$'
}

@test "require-tls: LOGIN and REGISTER are 530 in clear, fine over TLS" {
	local a

	a=$(uniq_name a)
	write_conf 'require-tls yes'
	tls_start_server -c "$CONF"
	conn_open p
	send p "REGISTER $a pw-$a"
	expect_reply p 530 '^530 encryption required, use STARTTLS$'
	send p "LOGIN $a pw-$a"
	expect_reply p 530 '^530 encryption required, use STARTTLS$'
	# what needs no password still works in clear
	send p "PING clear"
	expect_reply p 200 '^200 PONG clear$'
	send p "HELP"
	expect_reply p 200 '^200 end of HELP \(STARTTLS available\)$'
	send p "WHO"
	expect_reply p 401

	tls_open t
	send t "REGISTER $a pw-$a"
	expect_reply t 201 "^201 $a registered$"

	# in clear first (530), then upgraded on the same connection
	tool_connect s -c "$CERTS/ca.pem" 127.0.0.1 "$PORT"
	expect_line s '^200 '
	send s "LOGIN $a pw-$a"
	expect_reply s 530
	send s "STARTTLS"
	expect_line s '^220 go ahead$'
	tool_wait s '^starttls: TLS established'
	send s "LOGIN $a pw-$a"
	expect_reply s 200 "^200 welcome $a, [0-9]+ waiting$"
	# the account exists, yet the clear session still may not log in
	send p "LOGIN $a pw-$a"
	expect_reply p 530
}

@test "config keys tls-port, tls-cert, tls-key set up both kinds of TLS" {
	local port

	port=$(free_port)
	write_conf "tls-port $port"
	start_server -c "$CONF"
	TLS_PORT=$port
	local deadline=$((SECONDS + MYCHAT_START_TIMEOUT))
	until proc_listens "$SERVER_PID" "$TLS_PORT"; do
		((SECONDS < deadline)) || skip "TLS port $port taken meanwhile"
		sleep 0.02
	done
	tls_open t
	send t "PING conf"
	expect_reply t 200 '^200 PONG conf$'
	starttls_open s
	send s "PING conf-starttls"
	expect_reply s 200 '^200 PONG conf-starttls$'
}

@test "SIGHUP reloads a replaced certificate and key; open sessions go on" {
	local a b dir n

	a=$(uniq_name a)
	b=$(uniq_name b)
	dir=$BATS_TEST_TMPDIR/live
	mkdir -p "$dir"
	cp "$CERTS/server.pem" "$dir/cert.pem"
	cp "$CERTS/server.key" "$dir/key.pem"
	TLS_CERT=$dir/cert.pem TLS_KEY=$dir/key.pem tls_start_server
	tls_open old
	tool_wait old 'serial=1001$'
	send old "REGISTER $a pw-$a"
	expect_reply old 201
	starttls_open olds
	tool_wait olds 'serial=1001$'
	send olds "REGISTER $b pw-$b"
	expect_reply olds 201

	# replace both files (new key too), then SIGHUP
	cp "$CERTS/server2.pem" "$dir/cert.pem.new"
	cp "$CERTS/server2.key" "$dir/key.pem.new"
	mv "$dir/cert.pem.new" "$dir/cert.pem"
	mv "$dir/key.pem.new" "$dir/key.pem"
	n=$(grep -c 'TLS certificate reloaded' "$SERVER_LOG" || true)
	kill -HUP "$SERVER_PID"
	local deadline=$((SECONDS + MYCHAT_TIMEOUT))
	until (($(grep -c 'TLS certificate reloaded' "$SERVER_LOG") > n)); do
		((SECONDS < deadline)) || {
			fail "no reload in the log: $(tail -n 5 "$SERVER_LOG")"
			return 1
		}
		sleep 0.02
	done

	# new sessions see the new certificate, both ways
	tls_open new
	run tool_wait new '^starttls: TLS established'
	assert_output --regexp 'subject=/CN=mychat-reloaded serial=2002$'
	starttls_open news
	run tool_wait news '^starttls: TLS established'
	assert_output --regexp 'subject=/CN=mychat-reloaded serial=2002$'
	run bash -c "echo | timeout $MYCHAT_TIMEOUT openssl s_client -brief \
	    -connect 127.0.0.1:$TLS_PORT -CAfile '$CERTS/ca.pem' \
	    -verify_return_error 2>&1"
	assert_success
	assert_line 'Peer certificate: CN = mychat-reloaded'

	# the sessions opened before the reload keep working
	send old "TO $b"
	expect_reply old 200 "^200 $b is online$"
	send old "MSG from before the reload"
	expect_reply old 250
	expect_push olds "^MSG [0-9]+ $a [^ ]+ from before the reload$"
	send olds "PING olds"
	expect_reply olds 200 '^200 PONG olds$'

	# a broken replacement (key of another certificate) is refused and
	# the running certificate stays
	cp "$CERTS/server.key" "$dir/key.pem"
	n=$(grep -c 'keeping the old certificate' "$SERVER_LOG" || true)
	kill -HUP "$SERVER_PID"
	deadline=$((SECONDS + MYCHAT_TIMEOUT))
	until (($(grep -c 'keeping the old certificate' "$SERVER_LOG") > n)); do
		((SECONDS < deadline)) || {
			fail "bad key not reported: $(tail -n 5 "$SERVER_LOG")"
			return 1
		}
		sleep 0.02
	done
	tls_open new2
	run tool_wait new2 '^starttls: TLS established'
	assert_output --regexp 'serial=2002$'
	send new2 "PING after bad reload"
	expect_reply new2 200 '^200 PONG after bad reload$'
}

@test "implicit TLS: QUIT is answered 221 bye, then close_notify" {
	tls_start_server
	tls_open t
	send t "PING last"
	send t "QUIT"
	expect_reply t 200 '^200 PONG last$'
	expect_reply t 221 '^221 bye$'
	expect_eof t
	tool_exit t
	grep -q 'server closed with close_notify' "${TOOL_ERR[t]}" ||
	    fail "no TLS close_notify before the close: $(cat "${TOOL_ERR[t]}")"
}

@test "STARTTLS: replies sent just before the close arrive (pipelined PING, QUIT)" {
	tls_start_server
	starttls_open s
	send_raw s 'PING last\r\nQUIT\r\n'
	expect_reply s 200 '^200 PONG last$'
	expect_reply s 221 '^221 bye$'
	expect_eof s
	tool_exit s
	grep -q 'server closed with close_notify' "${TOOL_ERR[s]}" ||
	    fail "no TLS close_notify before the close: $(cat "${TOOL_ERR[s]}")"
}

# A TLS bufferevent writes on its own, so output for a TLS session waits
# for a pending fsync where it is added (conn.c): a 250 and a push over TLS
# leave only after the message is on disk, as in clear (durability.bats).
@test "implicit TLS: a 250 and a push over TLS wait for the fsync" {
	local stall=$BATS_TEST_TMPDIR/stall a b

	a=$(uniq_name a)
	b=$(uniq_name b)
	with_stalled_sync "$stall" tls_start_server -D sync
	tls_open t
	send t "REGISTER $a pw-$a"
	expect_reply t 201
	register_on p "$b" "pw-$b"
	send t "TO $b"
	expect_reply t 200
	send p "TO $a"
	expect_reply p 200

	# the sender on TLS: its 250 waits
	: >"$stall"
	send t "MSG from TLS, held"
	wait_file "$stall.on"
	expect_silence t 1
	rm -f "$stall" "$stall.on"
	expect_reply t 250 '^250 [0-9]+ delivered$'
	expect_push p "^MSG [0-9]+ $a [^ ]+ from TLS, held\$"

	# the recipient on TLS: the push waits
	: >"$stall"
	send p "MSG to TLS, held"
	wait_file "$stall.on"
	expect_silence t 1
	rm -f "$stall"
	expect_reply p 250 '^250 [0-9]+ delivered$'
	expect_push t "^MSG [0-9]+ $b [^ ]+ to TLS, held\$"
}
