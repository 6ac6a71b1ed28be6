# t/lib/common.bash: helpers for the mychat bats tests. Load it from every
# test file with "load lib/common".
#
# Servers
#   start_server [--dir DIR] [--port PORT] [--addr ADDR]... [mychatd args]
#	start "$MYCHATD" -f on a free port (PORT) with a fresh database
#	directory (or DIR, to restart on an existing one), listening on
#	127.0.0.1 (or each --addr), and wait until it listens. Sets and
#	exports PORT, SERVER_PID, SERVER_DIR, SERVER_LOG.
#   stop_server [PID]	SIGTERM, wait (MYCHAT_STOP_TIMEOUT, 30 s), kill -9 if
#			needed; fails unless the server exited 0 without a
#			sanitizer report (SERVER_STATUS: its exit status)
#   kill9_server [PID]	kill -9 and reap
#   stop_all_servers	stop every server started by this process; call
#			it from teardown/teardown_file (mychat_teardown does)
#
# Connections (pure bash, /dev/tcp; several named ones at once)
#   conn_open NAME [PORT] [HOST]	connect and read the greeting into GREETING
#   conn_open_raw NAME [PORT] [HOST]	connect, read nothing
#   send NAME LINE			send LINE + CRLF
#   send_raw NAME FORMAT [ARGS]		printf FORMAT ARGS to the socket, verbatim
#   recv NAME [TIMEOUT]			read one line into LINE (CR stripped);
#					TIMEOUT defaults to MYCHAT_TIMEOUT (20 s:
#					a loaded CI disk can stall a commit for
#					seconds; only a failure waits that long)
#   expect_line NAME REGEX		recv, then LINE must match REGEX
#   expect_reply NAME CODE [REGEX]	read one whole reply (NNN-... NNN ...),
#					skipping pushes into PUSHES; sets
#					REPLY_LINES (all lines) and LAST_REPLY;
#					CODE must match and REGEX the last line
#   expect_push NAME REGEX		the next push (queued or read) matches
#   expect_eof NAME			the server closes the connection
#   conn_close NAME
#   oneshot FORMAT [ARGS]		printf | socat, prints what the server
#					sent back (end the input with QUIT)
#   expect_silence NAME SECONDS		nothing arrives on NAME meanwhile
#
# Faults
#   with_stalled_sync FILE CMD...	run CMD (start_server, ...) with
#					t/tools/stallsync.so preloaded: the
#					server's fsyncs wait while FILE exists,
#					and create FILE.on when one does
#   wait_file FILE			wait until FILE exists
#
# Never call recv/expect_* through "run": run uses a subshell, which would
# consume the bytes and lose the variables.
#
# Every line sent and received is echoed ("NAME >>> ...", "NAME <<< ...") so
# a failing test shows the exchange.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

# Paths: "make check" exports these; by hand, guess from the tree.
: "${TOP_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/.." && pwd)}"
if [[ -z ${TOP_BUILDDIR:-} ]]; then
	if [[ -x $TOP_SRCDIR/src/mychatd ]]; then
		TOP_BUILDDIR=$TOP_SRCDIR
	else
		TOP_BUILDDIR=$TOP_SRCDIR/build
	fi
fi
: "${MYCHATD:=$TOP_BUILDDIR/src/mychatd}"
: "${MYCHAT:=$TOP_BUILDDIR/src/mychat}"
: "${MYCHATCTL:=$TOP_BUILDDIR/src/mychatctl}"
: "${STALLSYNC:=$TOP_BUILDDIR/t/tools/stallsync.so}"
: "${MYCHAT_TIMEOUT:=20}"
: "${MYCHAT_START_TIMEOUT:=30}"
: "${MYCHAT_STOP_TIMEOUT:=30}"
export TOP_SRCDIR TOP_BUILDDIR MYCHATD MYCHAT MYCHATCTL MYCHAT_TIMEOUT
export MYCHAT_START_TIMEOUT MYCHAT_STOP_TIMEOUT

# Per-process state: servers started here, open connections, queued pushes.
# (-g: bats sources this file inside a function.)
MYCHAT_PIDS=()
declare -gA MYCHAT_FD=()
declare -gA MYCHAT_LOGS=()
declare -gA MYCHAT_PUSHQ=()
LINE=
GREETING=
LAST_REPLY=
REPLY_LINES=()
PUSHES=()

# Print the TCP ports in use on this host, one per line, as 4 upper-case hex
# digits (from /proc; awk, because bash reads /proc files a byte at a time).
used_ports() {
	awk 'FNR > 1 { n = split($2, a, ":"); print a[n] }' \
	    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Print a TCP port that nothing on this host uses, below the ephemeral range
# when there is room there (the kernel hands those out to clients).
free_port() {
	local lo=20000 hi=60000 eph port i hex
	local -A used=()

	read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
	    eph=0
	if ((eph - lo >= 2000)); then
		hi=$((eph - 1))
	fi
	for port in $(used_ports); do
		used[$port]=1
	done
	for ((i = 0; i < 200; i++)); do
		port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		printf -v hex '%04X' "$port"
		if [[ -z ${used[$hex]:-} ]]; then
			echo "$port"
			return 0
		fi
	done
	echo "free_port: no free port found" >&2
	return 1
}

# Is process $1 alive (and not a zombie)?
proc_alive() {
	local stat state

	IFS= read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	state=${stat##*) }
	state=${state%% *}
	[[ -n $state && $state != Z && $state != X ]]
}

# Does process $1 hold a socket listening on TCP port $2?
proc_listens() {
	local pid=$1 port f inode fd
	local -A inodes=()

	printf -v port '%04X' "$2"
	for inode in $(awk -v p=":$port" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
	    /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
		inodes[$inode]=1
	done
	[[ ${#inodes[@]} -gt 0 ]] || return 1
	for fd in /proc/"$pid"/fd/*; do
		f=$(readlink "$fd" 2>/dev/null) || continue
		if [[ $f == socket:\[*\] ]]; then
			f=${f#socket:[}
			f=${f%]}
			[[ -n ${inodes[$f]:-} ]] && return 0
		fi
	done
	return 1
}

# Check a server log for sanitizer reports; prints them and fails if any.
check_server_log() {
	local log=$1

	[[ -f $log ]] || return 0
	if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer' "$log"; then
		echo "sanitizer report in $log:"
		tail -n 60 "$log"
		return 1
	fi
	return 0
}

# Start the server (see the top of this file) and wait until it listens.
start_server() {
	local dir= port= fixed_port= attempt deadline pid base status
	local addrs=() args=() a addr

	while [[ $# -gt 0 ]]; do
		case $1 in
		--dir)	dir=$2; shift 2 ;;
		--port)	fixed_port=$2; shift 2 ;;
		--addr)	addrs+=("$2"); shift 2 ;;
		*)	args+=("$1"); shift ;;
		esac
	done
	[[ ${#addrs[@]} -gt 0 ]] || addrs=(127.0.0.1)
	[[ -x $MYCHATD ]] || { fail "mychatd is not built: $MYCHATD"; return 1; }
	base=${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}
	if [[ -z $dir ]]; then
		dir=$(mktemp -d "$base/db.XXXXXX")
	fi
	mkdir -p "$dir"
	for attempt in 1 2 3 4 5; do
		port=${fixed_port:-$(free_port)}
		SERVER_LOG=$(mktemp --suffix=.log "$base/mychatd.$port.XXXXXX")
		a=()
		for addr in "${addrs[@]}"; do
			a+=(-a "$addr")
		done
		# Close bats' fd 3 in the server or bats waits for it.
		"$MYCHATD" -f -p "$port" -d "$dir" "${a[@]}" "${args[@]}" \
		    </dev/null >"$SERVER_LOG" 2>&1 3>&- &
		pid=$!
		deadline=$((SECONDS + MYCHAT_START_TIMEOUT))
		while :; do
			if ! proc_alive "$pid"; then
				status=0
				wait "$pid" 2>/dev/null || status=$?
				if [[ -z $fixed_port ]] &&
				    grep -qi 'in use' "$SERVER_LOG"; then
					continue 2	# lost a port race: retry
				fi
				fail "$(printf 'mychatd exited with status %s at startup:\n%s' \
				    "$status" "$(tail -n 30 "$SERVER_LOG")")"
				return 1
			fi
			proc_listens "$pid" "$port" && break
			if ((SECONDS >= deadline)); then
				kill -9 "$pid" 2>/dev/null || true
				wait "$pid" 2>/dev/null || true
				fail "$(printf 'mychatd not listening on port %s after %s s:\n%s' \
				    "$port" "$MYCHAT_START_TIMEOUT" "$(tail -n 30 "$SERVER_LOG")")"
				return 1
			fi
			sleep 0.02
		done
		PORT=$port
		SERVER_PID=$pid
		SERVER_DIR=$dir
		MYCHAT_PIDS+=("$pid")
		MYCHAT_LOGS[$pid]=$SERVER_LOG
		export PORT SERVER_PID SERVER_DIR SERVER_LOG
		return 0
	done
	fail "mychatd: no free port after 5 attempts"
}

# Wait up to $2 seconds for process $1 to end; reap it, status in WAIT_STATUS.
wait_exit() {
	local pid=$1 deadline=$((SECONDS + $2))

	WAIT_STATUS=
	while proc_alive "$pid"; do
		((SECONDS < deadline)) || return 1
		sleep 0.02
	done
	WAIT_STATUS=0
	wait "$pid" 2>/dev/null || WAIT_STATUS=$?
	return 0
}

# Forget pid $1 in MYCHAT_PIDS.
forget_pid() {
	local p keep=()

	for p in "${MYCHAT_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	MYCHAT_PIDS=("${keep[@]}")
}

# SIGTERM the server, wait for it; it must exit 0 with a clean log.
stop_server() {
	local pid=${1:-${SERVER_PID:-}} log

	[[ -n $pid ]] || return 0
	log=${MYCHAT_LOGS[$pid]:-$SERVER_LOG}
	forget_pid "$pid"
	SERVER_STATUS=
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_exit "$pid" "$MYCHAT_STOP_TIMEOUT"; then
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		fail "mychatd $pid did not exit within $MYCHAT_STOP_TIMEOUT s of SIGTERM"
		return 1
	fi
	SERVER_STATUS=$WAIT_STATUS
	check_server_log "$log" || { fail "sanitizer report"; return 1; }
	if [[ $SERVER_STATUS != 0 ]]; then
		fail "$(printf 'mychatd exited with status %s after SIGTERM:\n%s' \
		    "$SERVER_STATUS" "$(tail -n 30 "$log")")"
		return 1
	fi
}

# kill -9 the server and reap it (its database must survive that).
kill9_server() {
	local pid=${1:-${SERVER_PID:-}} log

	[[ -n $pid ]] || return 0
	log=${MYCHAT_LOGS[$pid]:-$SERVER_LOG}
	forget_pid "$pid"
	kill -9 "$pid" 2>/dev/null || true
	wait_exit "$pid" 10 || { fail "mychatd $pid survived kill -9"; return 1; }
	check_server_log "$log" || { fail "sanitizer report"; return 1; }
}

# Stop every server this process started (teardown, teardown_file).
stop_all_servers() {
	local p rc=0

	for p in "${MYCHAT_PIDS[@]}"; do
		stop_server "$p" || rc=1
	done
	return $rc
}

# Close every connection; stop servers started by this test.
mychat_teardown() {
	local n

	for n in "${!MYCHAT_FD[@]}"; do
		conn_close "$n"
	done
	stop_all_servers
}

# Print a line of the transcript, cut when long.
transcript() {
	local s=$2

	if ((${#s} > 200)); then
		s="${s:0:200}... (${#s} bytes)"
	fi
	printf '%s %s %s\n' "$1" "$3" "$s"
}

# Set FD to the fd of connection $1, or fail.
conn_fd() {
	FD=${MYCHAT_FD[$1]:-}
	if [[ -z $FD ]]; then
		fail "no connection named '$1'"
		return 1
	fi
}

# Connect without reading anything.
conn_open_raw() {
	local name=$1 port=${2:-$PORT} host=${3:-127.0.0.1} fd

	[[ -z ${MYCHAT_FD[$name]:-} ]] || conn_close "$name"
	exec {fd}<>"/dev/tcp/$host/$port" || {
		fail "cannot connect $name to $host port $port"
		return 1
	}
	MYCHAT_FD[$name]=$fd
	MYCHAT_PUSHQ[$name]=
	echo "$name: connected to $host port $port (fd $fd)"
}

# Connect and read the greeting into GREETING.
conn_open() {
	conn_open_raw "$@" || return 1
	recv "$1" || return 1
	GREETING=$LINE
	[[ $GREETING =~ ^200\  ]] || {
		fail "bad greeting on $1: $GREETING"
		return 1
	}
}

# Close connection $1.
conn_close() {
	local fd=${MYCHAT_FD[$1]:-}

	[[ -n $fd ]] || return 0
	exec {fd}>&-
	unset "MYCHAT_FD[$1]"
	unset "MYCHAT_PUSHQ[$1]"
}

# Send LINE + CRLF on connection $1.
send() {
	local fd

	conn_fd "$1" || return 1
	fd=$FD
	transcript "$1" "$2" '>>>'
	# A subshell, so that SIGPIPE on a closed socket fails only it.
	if ! (printf '%s\r\n' "$2" >&"$fd") 2>/dev/null; then
		fail "send on $1 failed (connection closed?)"
		return 1
	fi
}

# printf FORMAT ARGS verbatim to connection $1 (NUL bytes, LF only, ...).
send_raw() {
	local name=$1 fd

	conn_fd "$name" || return 1
	fd=$FD
	shift
	transcript "$name" "$(printf "$@" | tr '\0\r\n' '@$|')" '>>>'
	if ! (printf "$@" >&"$fd") 2>/dev/null; then
		fail "send_raw on $name failed (connection closed?)"
		return 1
	fi
}

# Read one line into LINE (without CR); fail on timeout or EOF.
recv() {
	local name=$1 t=${2:-$MYCHAT_TIMEOUT} fd rc=0

	conn_fd "$name" || return 1
	fd=$FD
	LINE=
	IFS= read -r -t "$t" -u "$fd" LINE || rc=$?
	if [[ $rc -eq 0 ]]; then
		LINE=${LINE%$'\r'}
		transcript "$name" "$LINE" '<<<'
		return 0
	fi
	if ((rc > 128)); then
		fail "timeout (${t} s) waiting for a line on $name${LINE:+; partial line: $LINE}"
	else
		fail "connection $name closed by the server${LINE:+ after a partial line: $LINE}"
	fi
	return 1
}

# Read one line; it must match the extended regex $2.
expect_line() {
	recv "$1" || return 1
	if ! [[ $LINE =~ $2 ]]; then
		fail "$(printf '%s: line does not match\n  regex: %s\n  line:  %s' \
		    "$1" "$2" "$LINE")"
		return 1
	fi
}

# Read one complete reply, skipping pushes (see the top of this file).
expect_reply() {
	local name=$1 code=$2 re=${3:-} l

	REPLY_LINES=()
	LAST_REPLY=
	while :; do
		recv "$name" || return 1
		l=$LINE
		if [[ $l =~ ^[A-Za-z] ]]; then
			PUSHES+=("$l")
			MYCHAT_PUSHQ[$name]+="$l"$'\n'
			continue
		fi
		REPLY_LINES+=("$l")
		if [[ $l =~ ^[0-9]{3}- ]]; then
			continue
		fi
		if [[ $l =~ ^[0-9]{3}(\ |$) ]]; then
			LAST_REPLY=$l
			break
		fi
		fail "$name: not a reply line: $l"
		return 1
	done
	for l in "${REPLY_LINES[@]}"; do
		if [[ ${l:0:3} != "$code" ]]; then
			fail "$(printf '%s: expected a %s reply, got:\n%s' "$name" \
			    "$code" "$(printf '  %s\n' "${REPLY_LINES[@]}")")"
			return 1
		fi
	done
	if [[ -n $re && ! $LAST_REPLY =~ $re ]]; then
		fail "$(printf '%s: reply does not match\n  regex: %s\n  reply: %s' \
		    "$name" "$re" "$LAST_REPLY")"
		return 1
	fi
}

# The next push on $1 (one skipped by expect_reply, or the next line read)
# must match the regex $2; sets LINE.
expect_push() {
	local name=$1 re=$2 q=${MYCHAT_PUSHQ[$1]:-}

	if [[ -n $q ]]; then
		LINE=${q%%$'\n'*}
		MYCHAT_PUSHQ[$name]=${q#*$'\n'}
	else
		recv "$name" || return 1
	fi
	if ! [[ $LINE =~ ^[A-Za-z] && $LINE =~ $re ]]; then
		fail "$(printf '%s: push does not match\n  regex: %s\n  line:  %s' \
		    "$name" "$re" "$LINE")"
		return 1
	fi
}

# The server must close connection $1 (no more lines) within the timeout.
expect_eof() {
	local name=$1 t=${2:-$MYCHAT_TIMEOUT} fd rc=0

	conn_fd "$name" || return 1
	fd=$FD
	LINE=
	IFS= read -r -t "$t" -u "$fd" LINE || rc=$?
	if [[ $rc -eq 0 ]]; then
		fail "$name: expected EOF, got a line: ${LINE%$'\r'}"
		return 1
	fi
	if ((rc > 128)); then
		fail "$name: timeout (${t} s) waiting for the server to close"
		return 1
	fi
	if [[ -n $LINE ]]; then
		fail "$name: expected EOF, got a partial line: $LINE"
		return 1
	fi
	echo "$name: EOF"
}

# One-shot session: printf FORMAT ARGS into a fresh connection and print
# everything the server sends until it closes (end the input with QUIT).
oneshot() {
	printf "$@" | socat -t "$MYCHAT_TIMEOUT" -T "$MYCHAT_TIMEOUT" \
	    - "TCP:127.0.0.1:$PORT"
}

# A unique account name for this test ("u<test number>_<random>").
uniq_name() {
	echo "${1:-u}${BATS_TEST_NUMBER:-0}_${RANDOM}${RANDOM}"
}

# Open connection $1 and register account $2 with password $3 on it.
register_on() {
	conn_open "$1" || return 1
	send "$1" "REGISTER $2 $3" || return 1
	expect_reply "$1" 201 "^201 $2 registered$"
}

# Open connection $1 and log in as $2 with password $3.
login_on() {
	conn_open "$1" || return 1
	send "$1" "LOGIN $2 $3" || return 1
	expect_reply "$1" 200 "^200 welcome "
}

# Send PREFIX, then filler bytes ("x") up to LEN bytes in all, then EOL
# (default CRLF) on connection $1, without holding the line in memory.
send_long() {
	local LC_ALL=C
	local name=$1 prefix=$2 len=$3 eol=${4-$'\r\n'} fd

	conn_fd "$name" || return 1
	fd=$FD
	transcript "$name" "$prefix<$((len - ${#prefix})) x> (${len} bytes)" '>>>'
	if ! ( { printf '%s' "$prefix"
	    head -c $((len - ${#prefix})) /dev/zero | tr '\0' x
	    printf '%s' "$eol"; } >&"$fd" ) 2>/dev/null; then
		fail "send_long on $name failed (connection closed?)"
		return 1
	fi
}

# Print N filler bytes ("x").
filler() {
	head -c "$1" /dev/zero | tr '\0' x
}

# Wait until file $1 exists (at most MYCHAT_TIMEOUT seconds).
wait_file() {
	local deadline=$((SECONDS + MYCHAT_TIMEOUT))

	until [[ -e $1 ]]; do
		if ((SECONDS >= deadline)); then
			fail "$1 did not appear in $MYCHAT_TIMEOUT s"
			return 1
		fi
		sleep 0.02
	done
}

# Nothing may arrive on connection $1 for $2 seconds (a check that
# something is held: the time bounds the test, the answer would come in
# a millisecond).
expect_silence() {
	local fd line

	conn_fd "$1" || return 1
	fd=$FD
	if IFS= read -r -t "$2" -u "$fd" line; then
		fail "$1: '${line%$'\r'}' arrived while it should be held"
		return 1
	fi
}

with_stalled_sync() {
	local file=$1

	shift
	[[ -f $STALLSYNC ]] || {
		fail "$STALLSYNC is not built (make check builds it)"
		return 1
	}
	# ASan wants its runtime first among the preloads; the shim has none
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	    LD_PRELOAD=$STALLSYNC MYCHAT_STALL_SYNC=$file "$@"
}
