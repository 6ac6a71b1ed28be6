#!/usr/bin/env bats
#
# t/slowreader.bats: backpressure without loss (issue 3, doc/protocol.md
# "Store-and-forward"). bob logs in and then does not read his socket
# while alice sends him ~50 MiB (820 messages of 65,000 bytes); the server
# must stop pushing to bob (keeping the messages in the log), keep its
# memory bounded, and never refuse alice; once bob reads he gets every
# message, in order, nothing lost.
#
# The memory bound. mychatd's VmRSS has two parts:
#  - RssFile: the Berkeley DB environment regions, mapped from files in the
#    database directory: a 64 MiB cache and an 8 MiB log buffer (store.c),
#    which fill up with any large enough amount of data, queued or not;
#  - RssAnon: the heap, where unbounded output buffers would show.
# Measured on the development machine (2 cores, Debian 12), this exact
# test: VmRSS peak 77 MiB (RssFile 76 MiB), RssAnon peak 17 MiB, back to
# 1.5 MiB afterwards, with 2.7 MiB waiting in the kernel's send queue.
# Bounds: RssAnon <= 32 MiB and VmRSS <= 112 MiB at every sample (taken
# in a loop while alice sends, and once after); a server that held the
# 50 MiB for bob in memory breaks both (1.5 + 50 > 32; 76 + 50 > 112).
# MSGTEST_ANON_MAX_KB / MSGTEST_RSS_MAX_KB override them. Under
# AddressSanitizer (its quarantine keeps freed memory) the RSS bounds are
# not checked; everything else is.

load lib/common

: "${SENDER:=$TOP_BUILDDIR/t/tools/sender}"
: "${MSGTEST_ANON_MAX_KB:=$((32 * 1024))}"
: "${MSGTEST_RSS_MAX_KB:=$((112 * 1024))}"

N=820
SIZE=65000

setup() {
	[[ -x $SENDER ]] ||
	    fail "$SENDER is not built (make check builds t/tools/sender)"
}

teardown() {
	[[ -z ${READER_PID:-} ]] || kill "$READER_PID" 2>/dev/null || true
	[[ -z ${SEND_PID:-} ]] || kill "$SEND_PID" 2>/dev/null || true
	mychat_teardown
}

# Print field $2 (kB) of /proc/$1/status.
proc_kb() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

@test "slow reader: ~50 MiB to a recipient that does not read; bounded memory, nothing lost" {
	local T=$BATS_TEST_TMPDIR deadline rss anon max_rss=0 max_anon=0
	local samples=0 st check_rss=1

	if grep -q __asan_init "$MYCHATD" 2>/dev/null; then
		check_rss=0
		echo "mychatd is built with AddressSanitizer: RSS bounds not checked"
	fi

	start_server
	register_on a alice pw
	conn_close a
	register_on b bob pw
	conn_close b

	# bob logs in, then holds his socket without reading (until SIGUSR1).
	"$SENDER" -r -p "$PORT" -u bob -w pw -n "$N" -S -R "$T/ready" \
	    -o "$T/recv" -T 120 2>"$T/reader.err" &
	READER_PID=$!
	deadline=$((SECONDS + 10))
	until [[ -s $T/ready ]]; do
		proc_alive "$READER_PID" || fail "reader: $(cat "$T/reader.err")"
		((SECONDS < deadline)) || fail "bob did not log in within 10 s"
		sleep 0.02
	done
	assert_equal "$(cat "$T/ready")" "200 welcome bob, 0 waiting"

	# alice sends N x SIZE bytes; sample the server's memory meanwhile.
	"$SENDER" -p "$PORT" -u alice -w pw -t bob -n "$N" -s "$SIZE" -W 8 \
	    -k slow -o "$T/sent" -T 120 2>"$T/sender.err" &
	SEND_PID=$!
	deadline=$((SECONDS + 120))
	while proc_alive "$SEND_PID"; do
		rss=$(proc_kb "$SERVER_PID" VmRSS)
		anon=$(proc_kb "$SERVER_PID" RssAnon)
		((rss > max_rss)) && max_rss=$rss
		((anon > max_anon)) && max_anon=$anon
		samples=$((samples + 1))
		((SECONDS < deadline)) || fail "alice's sender still runs after 120 s"
		sleep 0.02
	done
	st=0
	wait "$SEND_PID" || st=$?
	SEND_PID=
	# One more sample now that all 50 MiB are stored and bob has read
	# nothing: a server holding them in memory shows it here at the latest.
	rss=$(proc_kb "$SERVER_PID" VmRSS)
	anon=$(proc_kb "$SERVER_PID" RssAnon)
	((rss > max_rss)) && max_rss=$rss
	((anon > max_anon)) && max_anon=$anon
	samples=$((samples + 1))
	cat "$T/sender.err"
	echo "server memory over $samples samples: VmRSS max ${max_rss} kB" \
	    "(bound $MSGTEST_RSS_MAX_KB), RssAnon max ${max_anon} kB" \
	    "(bound $MSGTEST_ANON_MAX_KB)"
	grep -E '^(VmRSS|RssAnon|RssFile|RssShmem)' "/proc/$SERVER_PID/status"

	# alice was never refused: a 250 for every message, all delivered
	# (bob's session was connected), ids increasing.
	assert_equal "$st" 0
	assert_equal "$(wc -l <"$T/sent")" "$N"
	assert_equal "$(grep -c ' delivered$' "$T/sent")" "$N"
	awk '$2 <= last { exit 1 } { last = $2 }' "$T/sent" ||
	    fail "ids in 250 replies do not increase"

	if ((check_rss)); then
		((samples > 0)) || fail "no memory sample taken"
		((max_anon <= MSGTEST_ANON_MAX_KB)) ||
		    fail "RssAnon reached $max_anon kB > $MSGTEST_ANON_MAX_KB kB"
		((max_rss <= MSGTEST_RSS_MAX_KB)) ||
		    fail "VmRSS reached $max_rss kB > $MSGTEST_RSS_MAX_KB kB"
	fi

	# bob has not read a byte yet, and is still connected.
	proc_alive "$READER_PID" || fail "reader: $(cat "$T/reader.err")"
	[[ ! -s $T/recv ]] || fail "the reader read before it was told to"

	# Now bob reads: every message, in id order (the tool checks), each
	# exactly once, the ids alice was given.
	kill -USR1 "$READER_PID"
	wait_exit "$READER_PID" 120 || fail "bob did not get all $N in 120 s"
	READER_PID=
	cat "$T/reader.err"
	assert_equal "$WAIT_STATUS" 0
	assert_equal "$(wc -l <"$T/recv")" "$N"
	diff <(awk '{ print $2, $1 }' "$T/sent") "$T/recv" ||
	    fail "bob's pushes differ from the ids alice got (sent: id seq < > received)"

	# Memory after the drain.
	anon=$(proc_kb "$SERVER_PID" RssAnon)
	if ((check_rss)); then
		((anon <= MSGTEST_ANON_MAX_KB)) ||
		    fail "RssAnon is $anon kB after the drain"
	fi
	stop_server
}
