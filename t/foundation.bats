#!/usr/bin/env bats
#
# t/foundation.bats: black-box tests of the foundation of mychatd, written
# from doc/protocol.md: the greeting, framing and line limits, accounts
# (REGISTER, LOGIN, HELLO), the commands every session has, and restarts.
#
# Most tests share one server (setup_file) and use their own account names;
# tests that need a fresh database or stop the server start their own.

load lib/common

setup_file() {
	start_server
}

teardown_file() {
	stop_all_servers
}

teardown() {
	mychat_teardown
}

# The text of the 400 reply for an invalid name (a regex).
BAD_NAME='^400 invalid name \(1-32 characters of A-Z a-z 0-9 _ \. -\)$'

@test "greeting: 200 <hostname> mychat <version> ready" {
	local version

	version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' \
	    "$TOP_BUILDDIR/config.h")
	[[ -n $version ]] || fail "no PACKAGE_VERSION in $TOP_BUILDDIR/config.h"
	conn_open a
	assert_regex "$GREETING" '^200 [^ ]+ mychat [^ ]+ ready$'
	assert_equal "$GREETING" "200 $(uname -n) mychat $version ready"
}

@test "HELLO: guest, then the account last seen from this address" {
	start_server
	conn_open a
	send a "HELLO"
	expect_reply a 200 '^200 Hello guest$'
	send a "HELLO there, how are you"
	expect_reply a 200 '^200 Hello guest$'
	send a "REGISTER Alice pw1"
	expect_reply a 201 '^201 Alice registered$'

	conn_open b
	send b "HELLO"
	expect_reply b 200 '^200 Hello Alice$'

	register_on c bob pw2
	conn_open d
	send d "HELLO"
	expect_reply d 200 '^200 Hello bob$'
	send d "LOGIN alice pw1"
	expect_reply d 200 '^200 welcome Alice, 0 waiting$'

	conn_open e
	send e "HELLO"
	expect_reply e 200 '^200 Hello Alice$'
}

@test "REGISTER creates the account and logs the session in" {
	local n

	n=$(uniq_name)
	conn_open a
	send a "WHO"
	expect_reply a 401 '^401 log in first$'
	send a "REGISTER $n secret"
	expect_reply a 201 "^201 $n registered$"
	send a "WHO"
	expect_reply a 200 '^200 [0-9]+ online$'
	printf '%s\n' "${REPLY_LINES[@]}" | grep -qx "200-$n" ||
	    fail "WHO does not list $n"
}

@test "REGISTER of a taken name is 409, case-insensitively" {
	local n lower upper

	n=$(uniq_name Mixed)
	lower=${n,,}
	upper=${n^^}
	register_on a "$n" pw
	conn_open b
	send b "REGISTER $n other"
	expect_reply b 409 "^409 $n is taken$"
	send b "REGISTER $lower other"
	expect_reply b 409 "^409 ($n|$lower) is taken$"
	send b "REGISTER $upper other"
	expect_reply b 409 "^409 ($n|$upper) is taken$"
	# b is not logged in, and the first password is the one that counts.
	send b "WHO"
	expect_reply b 401 '^401 log in first$'
	send b "LOGIN $lower other"
	expect_reply b 401 '^401 bad name or password$'
	send b "LOGIN $lower pw"
	expect_reply b 200 "^200 welcome $n, 0 waiting$"
}

@test "REGISTER refuses invalid names with 400" {
	local bad n32

	conn_open a
	for bad in "$(filler 33)" 'al!ce' 'al/ce' 'a@b' 'al:ce' 'a,b' \
	    'é' $'caf\xc3\xa9' '*' "a'b"; do
		send a "REGISTER $bad pw"
		expect_reply a 400 "$BAD_NAME"
	done
	send_raw a 'REGISTER a\tb pw\r\n'
	expect_reply a 400 "$BAD_NAME"
	send a "WHO"
	expect_reply a 401 '^401 log in first$'

	# 32 characters is the longest valid name.
	n32=$(uniq_name)
	n32=$n32$(filler $((32 - ${#n32})))
	assert_equal "${#n32}" 32
	send a "REGISTER $n32 pw"
	expect_reply a 201 "^201 $n32 registered$"
}

@test "REGISTER and LOGIN without their arguments: 501 usage" {
	conn_open a
	send a "REGISTER"
	expect_reply a 501 '^501 usage: REGISTER <name> <password>$'
	send a "REGISTER onlyname"
	expect_reply a 501 '^501 usage: REGISTER <name> <password>$'
	send a "LOGIN"
	expect_reply a 501 '^501 usage: LOGIN <name> <password>$'
	send a "LOGIN onlyname"
	expect_reply a 501 '^501 usage: LOGIN <name> <password>$'
	send a "WHO"
	expect_reply a 401 '^401 log in first$'
}

@test "LOGIN: welcome with the registered spelling, in any case, from several sessions" {
	local n

	n=$(uniq_name CamelCase)
	register_on a "$n" 'p@ss:w0rd!'
	conn_close a
	conn_open b
	send b "LOGIN ${n,,} p@ss:w0rd!"
	expect_reply b 200 "^200 welcome $n, 0 waiting$"
	conn_open c
	send c "LOGIN ${n^^} p@ss:w0rd!"
	expect_reply c 200 "^200 welcome $n, 0 waiting$"
	# Both sessions are logged in at once.
	send b "WHO"
	expect_reply b 200 '^200 [0-9]+ online$'
	send c "WHO"
	expect_reply c 200 '^200 [0-9]+ online$'
}

@test "LOGIN: a wrong password and an unknown name get the same 401" {
	local n wrong unknown

	n=$(uniq_name)
	register_on a "$n" Secret
	conn_open b
	send b "LOGIN $n secret"
	expect_reply b 401 '^401 bad name or password$'
	wrong=$LAST_REPLY
	send b "LOGIN nosuch$n Secret"
	expect_reply b 401 '^401 bad name or password$'
	unknown=$LAST_REPLY
	assert_equal "$unknown" "$wrong"
	send b "WHO"
	expect_reply b 401 '^401 log in first$'
	send b "LOGIN $n Secret"
	expect_reply b 200 "^200 welcome $n, 0 waiting$"
}

@test "LOGIN or REGISTER when logged in: 409 already logged in" {
	local n1 n2 n3

	n1=$(uniq_name)
	n2=$(uniq_name)
	n3=$(uniq_name)
	register_on a "$n1" pw1
	register_on b "$n2" pw2
	send a "LOGIN $n2 pw2"
	expect_reply a 409 "^409 already logged in as $n1$"
	send a "LOGIN $n1 pw1"
	expect_reply a 409 "^409 already logged in as $n1$"
	send a "REGISTER $n3 pw3"
	expect_reply a 409 "^409 already logged in as $n1$"
	# The refused REGISTER created nothing.
	conn_open c
	send c "REGISTER $n3 pw3"
	expect_reply c 201 "^201 $n3 registered$"
}

@test "commands that need a login answer 401 log in first" {
	local cmd

	conn_open a
	for cmd in "TO bob" "MSG hello" "@tok1 MSG hello" "ACK 1" \
	    "HISTORY bob" "HISTORY bob 10 5" "SYNC 0" "SYNC 0 10" "WHO" \
	    "STATS" "to bob" "who"; do
		send a "$cmd"
		expect_reply a 401 '^401 log in first$'
	done
}

@test "PING: 200 PONG, with the token when one is given" {
	conn_open a
	send a "PING"
	expect_reply a 200 '^200 PONG$'
	send a "PING abc-123"
	expect_reply a 200 '^200 PONG abc-123$'
	register_on b "$(uniq_name)" pw
	send b "PING"
	expect_reply b 200 '^200 PONG$'
	send b "PING 42"
	expect_reply b 200 '^200 PONG 42$'
}

@test "HELP: a multi-line 200 reply naming every command" {
	local verb text

	conn_open a
	send a "HELP"
	expect_reply a 200
	((${#REPLY_LINES[@]} >= 2)) || fail "HELP has only one line"
	text=$(printf '%s\n' "${REPLY_LINES[@]}")
	# STARTTLS is left out: the server lists it only when TLS is set up.
	for verb in HELLO REGISTER LOGIN PING HELP CLOSE QUIT TO MSG ACK HISTORY \
	    SYNC WHO STATS; do
		grep -Eq "(^|[^A-Z])$verb([^A-Z]|$)" <<<"$text" ||
		    fail "HELP does not mention $verb"
	done
	# The session goes on, logged in or not.
	send a "PING"
	expect_reply a 200 '^200 PONG$'
	register_on b "$(uniq_name)" pw
	send b "HELP"
	expect_reply b 200
	((${#REPLY_LINES[@]} >= 2)) || fail "HELP has only one line"
}

@test "STARTTLS without TLS set up: 454 TLS not available" {
	conn_open a
	send a "STARTTLS"
	expect_reply a 454 '^454 TLS not available$'
	send a "PING"
	expect_reply a 200 '^200 PONG$'
}

@test "QUIT and CLOSE: 221 bye, then the server closes" {
	local verb

	for verb in QUIT CLOSE quit close; do
		conn_open a
		send a "$verb"
		expect_reply a 221 '^221 bye$'
		expect_eof a
		conn_close a
	done
	register_on b "$(uniq_name)" pw
	send b "QUIT"
	expect_reply b 221 '^221 bye$'
	expect_eof b
}

@test "unknown verbs: 500, before and after login" {
	conn_open a
	send a "FROBNICATE now"
	expect_reply a 500
	send a "HELOO"
	expect_reply a 500
	register_on b "$(uniq_name)" pw
	send b "FROBNICATE"
	expect_reply b 500
	send b "PINGPING"
	expect_reply b 500
	send b "PING"
	expect_reply b 200 '^200 PONG$'
}

@test "verbs are case-insensitive" {
	local n

	n=$(uniq_name)
	conn_open a
	send a "ping x"
	expect_reply a 200 '^200 PONG x$'
	send a "PiNg"
	expect_reply a 200 '^200 PONG$'
	send a "hello"
	expect_reply a 200 '^200 Hello '
	send a "help"
	expect_reply a 200
	send a "register $n pw"
	expect_reply a 201 "^201 $n registered$"
	send a "wHo"
	expect_reply a 200 '^200 [0-9]+ online$'
	send a "Quit"
	expect_reply a 221 '^221 bye$'
	expect_eof a
	conn_open b
	send b "login $n pw"
	expect_reply b 200 "^200 welcome $n, 0 waiting$"
}

@test "empty lines and lines of spaces get no reply" {
	conn_open a
	send_raw a '\r\n\n   \r\n \n\r\n'
	send a "PING after-empty"
	expect_line a '^200 PONG after-empty$'
	register_on b "$(uniq_name)" pw
	send_raw b '\n\r\n    \n'
	send b "PING logged-in"
	expect_line b '^200 PONG logged-in$'
}

@test "framing: LF and CRLF, mixed in one write" {
	conn_open a
	send_raw a 'PING lf\n'
	expect_line a '^200 PONG lf$'
	send_raw a 'PING crlf\r\n'
	expect_line a '^200 PONG crlf$'
	send_raw a 'PING one\nPING two\r\nPING three\n'
	expect_line a '^200 PONG one$'
	expect_line a '^200 PONG two$'
	expect_line a '^200 PONG three$'
	# A CR that does not end the line is a control character.
	send_raw a 'PING a\rb\r\n'
	expect_line a '^500 invalid characters in command line$'
	send a "PING ok"
	expect_line a '^200 PONG ok$'
}

@test "framing: every line the server sends ends with CRLF" {
	local out lines crlf

	out=$BATS_TEST_TMPDIR/out
	oneshot 'PING x\nHELP\nFROB\nQUIT\n' >"$out"
	lines=$(wc -l <"$out")
	crlf=$(grep -c $'\r$' "$out")
	((lines >= 5)) || fail "only $lines lines: $(cat -A "$out")"
	assert_equal "$crlf" "$lines"
	assert_equal "$(tail -c 9 "$out")" $'221 bye\r'
	# No stray CR inside a line, no blank line.
	run grep -c $'\r.' "$out"
	assert_output 0
	run grep -c $'^\r\?$' "$out"
	assert_output 0
}

@test "a 5 MiB line: 413, and the session goes on" {
	conn_open a
	send_long a "PING " $((5 * 1024 * 1024))
	send a "PING still-here"
	expect_line a '^413 line too long \(max 65536 bytes\)$'
	expect_line a '^200 PONG still-here$'
	# Sent in pieces, the end of an overlong line is discarded as well.
	send_long a "MSG " $((1024 * 1024)) ''
	send a "tail-of-the-long-line"
	send a "PING after-tail"
	expect_line a '^413 line too long \(max 65536 bytes\)$'
	expect_line a '^200 PONG after-tail$'
}

@test "a long line does not grow the server's memory" {
	local before after

	# Under ASan, freed memory waits in a quarantine (256 MiB): turn it off
	# so that RSS means what it says.
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" \
	    start_server
	conn_open a
	send a "PING warm-up"
	expect_line a '^200 PONG warm-up$'
	before=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
	send_long a "MSG " $((64 * 1024 * 1024))
	send a "PING after"
	expect_line a '^413 '
	expect_line a '^200 PONG after$'
	after=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
	echo "VmHWM before ${before} kB, after ${after} kB"
	# A buffered 64 MiB line would add 65536 kB; allow 8 MiB of slack.
	((after - before < 8192)) ||
	    fail "peak RSS grew by $((after - before)) kB for one long line"
}

@test "the line limit is exact (mychatd -l 100)" {
	start_server -l 100
	conn_open a
	send_long a "PING " 100
	expect_line a "^200 PONG $(filler 95)$"
	send_long a "PING " 100 $'\n'
	expect_line a "^200 PONG $(filler 95)$"
	send_long a "PING " 101
	expect_line a '^413 line too long \(max 100 bytes\)$'
	send_long a "PING " 101 $'\n'
	expect_line a '^413 line too long \(max 100 bytes\)$'
	send a "PING ok"
	expect_line a '^200 PONG ok$'
}

@test "a MSG line of exactly 65536 bytes is accepted; 65537 is 413" {
	local n id text

	n=$(uniq_name)
	register_on a "$n" pw
	send a "TO $n"
	expect_reply a 200 "^200 $n is online$"
	text=$(filler $((65536 - 4)))
	send a "MSG $text"
	expect_reply a 250 '^250 [0-9]+ delivered$'
	id=$(cut -d' ' -f2 <<<"$LAST_REPLY")
	expect_push a "^MSG $id $n "
	[[ $LINE == "MSG $id $n "*" $text" ]] ||
	    fail "the pushed text is not the text sent (${#LINE} bytes)"
	send_long a "MSG " 65537
	expect_reply a 413 '^413 line too long \(max 65536 bytes\)$'
	send a "PING"
	expect_reply a 200 '^200 PONG$'
}

@test "NUL bytes and binary garbage: 500, and other sessions keep working" {
	local fd

	conn_open a
	conn_open b
	register_on c "$(uniq_name)" pw
	send_raw a 'PING a\0b\r\n'
	expect_line a '^500 invalid characters in command line$'
	send_raw a '\001\002\377\376garbage\177\r\n'
	expect_line a '^500 invalid characters in command line$'
	send_raw c 'MSG \0\0\0\r\n'
	expect_line c '^500 invalid characters in command line$'
	send_raw a '\377\376\375 \200\r\n'
	expect_line a '^500 '
	# 4 KiB of random bytes (CRs and NULs included) as one line.
	conn_fd a
	fd=$FD
	{ head -c 4096 /dev/urandom | tr -d '\n'; printf '\r\n'; } >&"$fd"
	expect_line a '^500 '
	send a "PING a-alive"
	expect_line a '^200 PONG a-alive$'
	send b "PING b-alive"
	expect_line b '^200 PONG b-alive$'
	send c "PING c-alive"
	expect_line c '^200 PONG c-alive$'
}

@test "pipelined commands in one write are answered in order" {
	local n

	n=$(uniq_name)
	conn_open a
	send_raw a "PING 1\r\nHELP\r\nPING 2\r\nREGISTER $n pw\r\nWHO\r\nPING 3\r\nFROB\r\nLOGIN $n pw\r\nPING 4\r\n"
	expect_reply a 200 '^200 PONG 1$'
	expect_reply a 200
	((${#REPLY_LINES[@]} >= 2)) || fail "HELP has only one line"
	expect_reply a 200 '^200 PONG 2$'
	expect_reply a 201 "^201 $n registered$"
	expect_reply a 200 '^200 [0-9]+ online$'
	expect_reply a 200 '^200 PONG 3$'
	expect_reply a 500
	expect_reply a 409 "^409 already logged in as $n$"
	expect_reply a 200 '^200 PONG 4$'
	# Nothing is answered after QUIT.
	send_raw a 'PING 5\r\nQUIT\r\nPING 6\r\n'
	expect_reply a 200 '^200 PONG 5$'
	expect_reply a 221 '^221 bye$'
	expect_eof a
}

@test "pipelined LOGINs with a wrong password stay in order" {
	local n

	n=$(uniq_name)
	register_on a "$n" right
	conn_open b
	send_raw b "LOGIN $n wrong\r\nPING x\r\nLOGIN $n right\r\nWHO\r\n"
	expect_reply b 401 '^401 bad name or password$'
	expect_reply b 200 '^200 PONG x$'
	expect_reply b 200 "^200 welcome $n, 0 waiting$"
	expect_reply b 200 '^200 [0-9]+ online$'
}

@test "half-close: every command sent is answered, then the server closes" {
	local n in

	n=$(uniq_name)
	in=$BATS_TEST_TMPDIR/in
	printf 'PING 1\r\nREGISTER %s pw\r\nWHO\r\nPING 2\r\n' "$n" >"$in"
	# socat shuts down its sending side at the end of its input, then
	# waits (-t) for the server to close; timeout kills it (124) if the
	# server never does.
	run timeout "$MYCHAT_TIMEOUT" socat -t 3600 -T 3600 - \
	    "TCP:127.0.0.1:$PORT" <"$in"
	assert_success
	mapfile -t lines <<<"${output//$'\r'/}"
	output=${output//$'\r'/}
	assert_line --index 0 --regexp '^200 [^ ]+ mychat [^ ]+ ready$'
	assert_line --index 1 '200 PONG 1'
	assert_line --index 2 "201 $n registered"
	assert_line --partial "200-$n"
	assert_line --regexp '^200 [0-9]+ online$'
	assert_equal "${lines[-1]}" '200 PONG 2'
}

@test "a @token before anything but MSG: 501" {
	conn_open a
	send a "@t1 PING"
	expect_reply a 501 '^501 only MSG takes a @token$'
	register_on b "$(uniq_name)" pw
	send b "@t2 WHO"
	expect_reply b 501 '^501 only MSG takes a @token$'
	send b "@t3 PING x"
	expect_reply b 501 '^501 only MSG takes a @token$'
	send b "PING"
	expect_reply b 200 '^200 PONG$'
}

@test "two clients at once" {
	local na nb

	na=$(uniq_name)
	nb=$(uniq_name)
	conn_open a
	conn_open b
	send a "REGISTER $na pa"
	send b "REGISTER $nb pb"
	expect_reply b 201 "^201 $nb registered$"
	expect_reply a 201 "^201 $na registered$"
	send b "PING b1"
	send a "PING a1"
	expect_line a '^200 PONG a1$'
	expect_line b '^200 PONG b1$'
	send a "WHO"
	expect_reply a 200 '^200 [0-9]+ online$'
	printf '%s\n' "${REPLY_LINES[@]}" | grep -qx "200-$na" ||
	    fail "WHO does not list $na"
	printf '%s\n' "${REPLY_LINES[@]}" | grep -qx "200-$nb" ||
	    fail "WHO does not list $nb"
	# The count matches the names listed.
	assert_equal "${LAST_REPLY#200 }" "$((${#REPLY_LINES[@]} - 1)) online"
}

@test "accounts survive kill -9 and a restart on the same database" {
	local dir

	start_server
	dir=$SERVER_DIR
	register_on a Carol pw
	conn_close a
	kill9_server
	start_server --dir "$dir"
	conn_open b
	send b "HELLO"
	expect_reply b 200 '^200 Hello Carol$'
	send b "LOGIN carol wrong"
	expect_reply b 401 '^401 bad name or password$'
	send b "LOGIN CAROL pw"
	expect_reply b 200 '^200 welcome Carol, 0 waiting$'
	conn_open c
	send c "REGISTER carol other"
	expect_reply c 409 '^409 (Carol|carol) is taken$'
	# And once more after a clean stop.
	conn_close b
	conn_close c
	stop_server
	start_server --dir "$dir"
	conn_open d
	send d "LOGIN carol pw"
	expect_reply d 200 '^200 welcome Carol, 0 waiting$'
}

@test "SIGTERM: sessions get 421, the server exits 0" {
	start_server
	conn_open a
	register_on b "$(uniq_name)" pw
	stop_server
	assert_equal "$SERVER_STATUS" 0
	expect_line a '^421 server shutting down$'
	expect_eof a
	expect_line b '^421 server shutting down$'
	expect_eof b
}

@test "SIGTERM while the server is still starting: exit 0" {
	local dir port pid log pat deadline

	# Like start_server, but the stop comes as soon as the port listens,
	# while the server may still be opening its database.
	dir=$BATS_TEST_TMPDIR/db
	log=$BATS_TEST_TMPDIR/mychatd.log
	mkdir -p "$dir"
	port=$(free_port)
	"$MYCHATD" -f -p "$port" -d "$dir" -a 127.0.0.1 </dev/null >"$log" 2>&1 3>&- &
	pid=$!
	MYCHAT_PIDS+=("$pid")
	MYCHAT_LOGS[$pid]=$log
	printf -v pat '^ *[0-9]+: 0100007F:%04X 00000000:0000 0A ' "$port"
	deadline=$((SECONDS + MYCHAT_START_TIMEOUT))
	until grep -Eq "$pat" /proc/net/tcp; do
		proc_alive "$pid" || fail "mychatd exited: $(cat "$log")"
		((SECONDS < deadline)) || fail "mychatd does not listen"
		sleep 0.01
	done
	stop_server "$pid"
	assert_equal "$SERVER_STATUS" 0
}

@test "listen addresses: -a is repeatable, ::1 works" {
	[[ -r /proc/net/if_inet6 ]] && grep -q '^0\{31\}1 ' /proc/net/if_inet6 ||
	    skip "no IPv6 loopback here"
	start_server --addr ::1 --addr 127.0.0.1
	conn_open a "$PORT" ::1
	send a "PING v6"
	expect_reply a 200 '^200 PONG v6$'
	conn_open b "$PORT" 127.0.0.1
	send b "PING v4"
	expect_reply b 200 '^200 PONG v4$'
}
