#!/usr/bin/env bats
#
# t/client-interactive.bats: the interactive mychat client on a real
# terminal (a tmux pane), against a real mychatd. Keys go in with
# "tmux send-keys", the screen comes back with "tmux capture-pane", and
# every check polls the screen until the text shows up or a timeout ends.

load lib/common

bats_require_minimum_version 1.5.0

setup_file() {
	start_server
}

teardown_file() {
	stop_all_servers
}

setup() {
	command -v tmux >/dev/null || skip "tmux is not installed"
	export XDG_DATA_HOME=$BATS_TEST_TMPDIR/xdg
	# A UTF-8 terminal, whatever the locale "make check" runs in.
	export LC_ALL=C.UTF-8
	TMUX_SOCK=mychat-test-$$-${BATS_TEST_NUMBER}
}

teardown() {
	tm kill-server 2>/dev/null || true
	if [[ -n ${RELAY_PID:-} ]]; then
		kill "$RELAY_PID" 2>/dev/null || true
		wait "$RELAY_PID" 2>/dev/null || true
	fi
	mychat_teardown
}

# tmux on this test's own server socket, without the user's configuration.
tm() {
	tmux -u -L "$TMUX_SOCK" -f /dev/null "$@" 3>&-
}

# Start the client in a new tmux session named $1 (more mychat args
# follow); when it exits, the pane shows "[exit N]".
start_client() {
	local name=$1

	shift
	tm new-session -d -s "$name" -x 110 -y 40 \
	    "$(printf '%q ' "$MYCHAT" "$@"); echo \"[exit \$?]\"; sleep 600"
}

# The screen of session $1.
screen() {
	tm capture-pane -p -J -t "$1"
}

# Wait until the screen of session $1 matches the extended regex $2.
wait_screen() {
	local name=$1 re=$2 t=${3:-$MYCHAT_TIMEOUT} deadline s

	deadline=$((SECONDS + t))
	while :; do
		s=$(screen "$name")
		if grep -Eq -- "$re" <<<"$s"; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			fail "$(printf 'screen of %s does not show /%s/ after %s s:\n%s' \
			    "$name" "$re" "$t" "$s")"
			return 1
		fi
		sleep 0.05
	done
}

# Type the literal text $2 into session $1 (no Enter).
type_in() {
	tm send-keys -t "$1" -l -- "$2"
}

# Type the line $2 and Enter.
type_line() {
	type_in "$1" "$2"
	tm send-keys -t "$1" Enter
}

# The last non-empty line of the screen of $1.
last_line() {
	screen "$1" | grep -v '^[[:space:]]*$' | tail -n 1
}

# Start a relay to the server on RELAY_PORT: the first connection runs the
# bash code $1 (stdin and stdout are the client's socket, $PORT is the
# server's port) and makes the file $BATS_TEST_TMPDIR/first-done when it
# ends; later connections are passed through to the server.
start_relay() {
	local deadline

	command -v socat >/dev/null || skip "socat is not installed"
	RELAY_PORT=$(free_port)
	{
		printf '#!/bin/bash\nPORT=%q\n' "$PORT"
		printf 'if mkdir %q 2>/dev/null; then\n' \
		    "$BATS_TEST_TMPDIR/first"
		printf '%s\n' "$1"
		printf 'touch %q\nexit 0\nfi\n' "$BATS_TEST_TMPDIR/first-done"
		printf 'exec socat - TCP:127.0.0.1:%s\n' "$PORT"
	} >"$BATS_TEST_TMPDIR/relay"
	chmod +x "$BATS_TEST_TMPDIR/relay"
	socat TCP-LISTEN:"$RELAY_PORT",bind=127.0.0.1,reuseaddr,fork \
	    EXEC:"$BATS_TEST_TMPDIR/relay" </dev/null >/dev/null 2>&1 3>&- &
	RELAY_PID=$!
	deadline=$((SECONDS + 10))
	until proc_listens "$RELAY_PID" "$RELAY_PORT"; do
		((SECONDS < deadline)) || fail "relay not listening"
		sleep 0.02
	done
}

# Wait until the relay's first connection has ended.
wait_relay_done() {
	local deadline=$((SECONDS + MYCHAT_TIMEOUT))

	until [[ -e $BATS_TEST_TMPDIR/first-done ]]; do
		((SECONDS < deadline)) || fail "the relay's first connection did not end"
		sleep 0.05
	done
}

# Log the client in session $1 in as $2 with password $3.
client_login() {
	start_client "$1" -p "$PORT" 127.0.0.1
	wait_screen "$1" 'New account or log in\? \[n/l\]'
	type_line "$1" l
	wait_screen "$1" 'Name( \[[^]]*\])?: *$'
	type_line "$1" "$2"
	wait_screen "$1" 'Password: *$'
	type_line "$1" "$3"
	wait_screen "$1" "Logged in as $2"
}

@test "login: a wrong password, a taken name, then success; no echo" {
	local a n
	a=$(uniq_name a)
	n=$(uniq_name n)
	register_on reg "$a" Secret1
	conn_close reg

	start_client c -p "$PORT" 127.0.0.1
	wait_screen c "Connected to 127.0.0.1 port $PORT: .* ready"
	wait_screen c 'New account or log in\? \[n/l\]'
	type_line c l
	wait_screen c 'Name'
	type_line c "$a"
	wait_screen c 'Password: *$'
	type_line c WrongPass9
	wait_screen c 'Wrong name or password\.'
	wait_screen c 'New account or log in\? \[n/l\] *$'

	# A new account with a name that is taken.
	type_line c n
	wait_screen c 'Name: *$'
	type_line c "$a"
	wait_screen c 'Choose a password: *$'
	type_line c Other2
	wait_screen c 'Repeat the password: *$'
	type_line c Other3
	wait_screen c 'The passwords differ'
	wait_screen c 'Choose a password: *$'
	type_line c Other2
	wait_screen c 'Repeat the password: *$'
	type_line c Other2
	wait_screen c "The name $a is already taken"
	wait_screen c 'New account or log in\? \[n/l\] *$'

	# Then the right password.
	type_line c l
	wait_screen c 'Name( \[[^]]*\])?: *$'
	type_line c "$a"
	wait_screen c 'Password: *$'
	type_line c Secret1
	wait_screen c "Logged in as $a - 0 waiting"
	wait_screen c '^> *$'

	# Passwords never show on the screen.
	run screen c
	refute_output --partial WrongPass9
	refute_output --partial Other2
	refute_output --partial Other3
	refute_output --partial Secret1

	# A new account works too (in a second client).
	start_client d -p "$PORT" 127.0.0.1
	wait_screen d 'New account or log in'
	type_line d n
	wait_screen d 'Name: *$'
	type_line d "$n"
	wait_screen d 'Choose a password: *$'
	type_line d pw
	wait_screen d 'Repeat the password: *$'
	type_line d pw
	wait_screen d "Account $n created"
}

@test "/to shows online, offline, unknown; a message goes out with a receipt" {
	local a b off id
	a=$(uniq_name a)
	b=$(uniq_name b)
	off=$(uniq_name off)
	register_on reg "$a" pa
	conn_close reg
	register_on reg "$off" po
	conn_close reg
	register_on peer "$b" pb

	client_login c "$a" pa
	type_line c "/to nosuchuser$RANDOM"
	wait_screen c 'There is no user nosuchuser'
	type_line c "/to $off"
	wait_screen c "$off is offline; your messages will be kept"
	type_line c "/to $b"
	wait_screen c "$b is online\."
	wait_screen c "^to $b> *$"

	type_line c "hello bob, ça va?"
	expect_push peer "^MSG [0-9]+ $a [0-9T:.-]+Z hello bob, ça va\?$"
	wait_screen c "✓ #[0-9]+ \"hello bob, ça va\?\" delivered"

	# The peer reads it: the double tick.
	[[ $LINE =~ ^MSG\ ([0-9]+) ]]
	id=${BASH_REMATCH[1]}
	send peer "ACK $id"
	expect_reply peer 200
	wait_screen c "✓✓ $b has read your messages up to #$id$"

	# A line starting with // sends a message starting with /.
	type_line c "//not a command"
	expect_push peer "^MSG [0-9]+ $a [^ ]+ /not a command$"
	type_line c "/frobnicate"
	wait_screen c 'Unknown command /frobnicate'
}

@test "a message arriving while typing shows at once; the half-typed line survives" {
	local a b c id
	a=$(uniq_name a)
	b=$(uniq_name b)
	c=$(uniq_name c)
	register_on reg "$a" pa
	conn_close reg
	register_on peer "$b" pb
	register_on other "$c" pc
	send peer "TO $a"
	expect_reply peer 503
	send other "TO $a"
	expect_reply other 503

	client_login c "$a" pa
	type_line c "/to $b"
	wait_screen c "^to $b> *$"
	type_in c "half typ"
	wait_screen c "^to $b> half typ$"

	send peer "MSG incoming while typing"
	expect_reply peer 250
	wait_screen c "^\[[0-9]{2}:[0-9]{2}\] $b: incoming while typing$"
	# The edited line is redrawn below the message, as it was.
	assert_equal "$(last_line c)" "to $b> half typ"
	# The client ACKs what it showed: the sender gets the receipt.
	expect_push peer "^ACKED [0-9]+ $a$"

	# Someone else than the current peer: shown, and marked.
	send other "MSG psst"
	expect_reply other 250
	wait_screen c "^\[[0-9]{2}:[0-9]{2}\] >>> $c: psst$"
	assert_equal "$(last_line c)" "to $b> half typ"

	# Typing goes on where it was; the line is sent whole.
	type_line c "ed line"
	expect_push peer "^MSG [0-9]+ $a [^ ]+ half typed line$"

	# Both are in the local log.
	run cat "$XDG_DATA_HOME/mychat/${a,,}/${b,,}.log"
	assert_line --regexp "#[0-9]+ $b: incoming while typing$"
	assert_line --regexp "#[0-9]+ $a: half typed line$"
	run cat "$XDG_DATA_HOME/mychat/${a,,}/${c,,}.log"
	assert_line --regexp "#[0-9]+ $c: psst$"
}

@test "a paste of several lines is one message; multi-line messages show indented" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	register_on reg "$a" pa
	conn_close reg
	register_on peer "$b" pb
	send peer "TO $a"
	expect_reply peer 503

	client_login c "$a" pa
	type_line c "/to $b"
	wait_screen c "^to $b> *$"
	tm set-buffer -b p -- $'first pasted line\nsecond \\ line'
	tm paste-buffer -b p -t c
	wait_screen c 'second \\ line$'
	tm send-keys -t c Enter
	expect_push peer "^MSG [0-9]+ $a [^ ]+ first pasted line\\\\nsecond \\\\\\\\ line$"

	send peer 'MSG one\ntwo \\ three'
	expect_reply peer 250
	wait_screen c "^\[[0-9]{2}:[0-9]{2}\] $b: one$"
	wait_screen c "^ +two \\\\ three$"
}

@test "terminal controls in a message (C1 CSI) are shown as ?, not obeyed" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	register_on reg "$a" pa
	conn_close reg
	register_on peer "$b" pb
	send peer "TO $a"
	expect_reply peer 503

	client_login c "$a" pa
	# U+009B is valid UTF-8 text for the server, and CSI for a terminal.
	send_raw peer 'MSG evil \xc2\x9b2J\xc2\x9b31mred\r\n'
	expect_reply peer 250
	wait_screen c "\] >>> $b: evil \?\?2J\?\?31mred$"
	wait_screen c "Logged in as $a"
}

@test "/who and /history" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	register_on reg "$a" pa
	conn_close reg
	register_on peer "$b" pb
	send peer "TO $a"
	expect_reply peer 503
	send peer "MSG old news"
	expect_reply peer 250

	client_login c "$a" pa
	wait_screen c "\] >>> $b: old news$"
	type_line c "/who"
	wait_screen c "^Online: .*$b"
	type_line c "/to $b"
	wait_screen c "^to $b> *$"
	type_line c "my answer"
	wait_screen c '✓ #[0-9]+ "my answer" delivered'
	type_line c "/history 5"
	wait_screen c "^-- 2 messages --$"
	run screen c
	assert_line --regexp "^\[[0-9:]+\] $b: old news$"
	assert_line --regexp "^\[[0-9:]+\] $a: my answer$"
}

@test "!close ends the session cleanly (exit 0); so does ^D" {
	local a
	a=$(uniq_name a)
	register_on reg "$a" pa
	conn_close reg

	client_login c "$a" pa
	type_line c '!close'
	wait_screen c '^\[exit 0\]$'

	client_login d "$a" pa
	tm send-keys -t d C-d
	wait_screen d '^\[exit 0\]$'
}

@test "a lost connection: reported, reconnect, log in again, resend, receive" {
	local a b dir port
	a=$(uniq_name a)
	b=$(uniq_name b)
	# A server of its own, to stop and start again.
	start_server
	dir=$SERVER_DIR
	port=$PORT
	register_on reg "$a" pa
	conn_close reg
	register_on reg "$b" pb
	conn_close reg

	client_login c "$a" pa
	type_line c "/to $b"
	wait_screen c "$b is offline"

	stop_server
	wait_screen c '\*\*\* .*; reconnecting in [0-9]+ s'
	type_line c "typed while the server was down"
	wait_screen c 'will be sent when the connection is back'

	start_server --dir "$dir" --port "$port"
	wait_screen c '\*\*\* logged in again as' 40
	wait_screen c '✓ #[0-9]+ "typed while the server was dow\.\.\." stored'

	# b gets it once; a message from b reaches a.
	login_on peer "$b" pb
	expect_push peer "^MSG [0-9]+ $a [^ ]+ typed while the server was down$"
	send peer "TO $a"
	expect_reply peer 200
	send peer "MSG welcome back"
	expect_reply peer 250
	wait_screen c "\] $b: welcome back$"
}

@test "a message re-sent by the server after a reconnect is shown once" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	register_on reg "$a" pa
	conn_close reg
	register_on peer "$b" pb
	send peer "TO $a"
	expect_reply peer 503
	send peer "MSG shown once"
	expect_reply peer 250

	# The first connection hangs up when the client ACKs, before the ACK
	# reaches the server: after the reconnect, the server pushes the
	# message again.
	start_relay '
exec 5<>/dev/tcp/127.0.0.1/$PORT
cat <&5 &
while IFS= read -r l; do
	[[ $l == "ACK "* ]] && break
	printf "%s\n" "$l" >&5
done
kill $!'
	start_client c -p "$RELAY_PORT" 127.0.0.1
	wait_screen c 'New account or log in'
	type_line c l
	wait_screen c 'Name( \[[^]]*\])?: *$'
	type_line c "$a"
	wait_screen c 'Password: *$'
	type_line c pa
	wait_screen c "\] >>> $b: shown once$"
	wait_screen c '\*\*\* connection lost: .*; reconnecting'
	wait_screen c '\*\*\* logged in again'
	# Pushes come in id order: once this one shows, the old one is past.
	send peer "MSG after the reconnect"
	expect_reply peer 250
	wait_screen c "\] >>> $b: after the reconnect$"
	run screen c
	assert_equal "$(grep -c 'shown once$' <<<"$output")" 1
	# And now both are acknowledged.
	expect_push peer "^ACKED [0-9]+ $a$"
}

@test "the server drops a slow login: the client connects again when ready" {
	local a
	a=$(uniq_name a)
	register_on reg "$a" pa
	conn_close reg

	# The first connection is closed the way the server closes a login
	# that takes too long (login-timeout).
	start_relay '
printf "200 fake mychat 0 ready\r\n421 login timeout\r\n"'
	start_client c -p "$RELAY_PORT" 127.0.0.1
	wait_screen c 'New account or log in\? \[n/l\] *$'
	wait_relay_done
	type_line c l
	wait_screen c 'Name( \[[^]]*\])?: *$'
	type_line c "$a"
	wait_screen c 'Password: *$'
	type_line c pa
	wait_screen c "Logged in as $a"
	run screen c
	refute_output --partial '***'
}

@test "without a terminal, the dialogue is read line by line from stdin" {
	local a b
	a=$(uniq_name a)
	b=$(uniq_name b)
	register_on reg "$a" pa
	conn_close reg
	register_on peer "$b" pb

	run timeout 60 "$MYCHAT" -p "$PORT" 127.0.0.1 < <(printf \
	    'l\n%s\npa\n/to %s\nfrom a pipe\nand another\n' "$a" "$b")
	assert_success
	assert_line --partial "Logged in as $a"
	assert_line "$b is online."
	assert_line --regexp '✓ #[0-9]+ "from a pipe" delivered'
	assert_line --regexp '✓ #[0-9]+ "and another" delivered'
	refute_output --partial 'pa
'
	expect_push peer "^MSG [0-9]+ $a [^ ]+ from a pipe$"
	expect_push peer "^MSG [0-9]+ $a [^ ]+ and another$"

	# Input that ends before any login succeeded: the login's status.
	run timeout 60 "$MYCHAT" -p "$PORT" 127.0.0.1 < <(printf \
	    'l\n%s\nwrong\n' "$a")
	assert_failure 5
	assert_line 'Wrong name or password.'
}
