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
	[[ -z ${R2_PID:-} ]] || kill "$R2_PID" 2>/dev/null || true
	[[ -z ${R3_PID:-} ]] || kill "$R3_PID" 2>/dev/null || true
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
	    -o "$T/recv" -T 120 2>"$T/reader.err" 3>&- &
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
	    -k slow -o "$T/sent" -T 120 2>"$T/sender.err" 3>&- &
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

@test "slow reader: a session that does not read holds up neither bob's other session nor carol" {
	local T=$BATS_TEST_TMPDIR n=200 deadline

	start_server
	register_on a alice pw
	conn_close a
	register_on b bob pw
	conn_close b
	register_on c carol pw
	conn_close c

	# bob's first session does not read; his second one and carol do.
	"$SENDER" -r -p "$PORT" -u bob -w pw -n "$n" -S -R "$T/ready1" \
	    -o "$T/recv1" -T 120 2>"$T/reader1.err" 3>&- &
	READER_PID=$!
	"$SENDER" -r -p "$PORT" -u bob -w pw -n "$n" -R "$T/ready2" \
	    -o "$T/recv2" -T 120 2>"$T/reader2.err" 3>&- &
	local r2=$!
	R2_PID=$r2
	"$SENDER" -r -p "$PORT" -u carol -w pw -n "$n" -R "$T/ready3" \
	    -o "$T/recv3" -T 120 2>"$T/reader3.err" 3>&- &
	local r3=$!
	R3_PID=$r3
	deadline=$((SECONDS + 10))
	until [[ -s $T/ready1 && -s $T/ready2 && -s $T/ready3 ]]; do
		((SECONDS < deadline)) || fail "the readers did not log in"
		sleep 0.02
	done

	# alice sends 200 x 64 KiB to bob, then 200 x 64 KiB to carol.
	"$SENDER" -p "$PORT" -u alice -w pw -t bob -n "$n" -s "$SIZE" -W 8 \
	    -k tobob -o "$T/sent_bob" -T 120 || fail "sending to bob failed"
	"$SENDER" -p "$PORT" -u alice -w pw -t carol -n "$n" -s "$SIZE" -W 8 \
	    -k tocarol -o "$T/sent_carol" -T 120 || fail "sending to carol failed"

	# bob's reading session and carol get everything while bob's first
	# session still has not read a byte.
	wait_exit "$r2" 120 || fail "bob's reading session did not get all $n"
	assert_equal "$WAIT_STATUS" 0
	wait_exit "$r3" 120 || fail "carol did not get all $n"
	assert_equal "$WAIT_STATUS" 0
	diff <(awk '{ print $2, $1 }' "$T/sent_bob") "$T/recv2" ||
	    fail "bob's reading session: pushes differ from the ids alice got"
	diff <(awk '{ print $2, $1 }' "$T/sent_carol") "$T/recv3" ||
	    fail "carol: pushes differ from the ids alice got"
	proc_alive "$READER_PID" || fail "reader 1: $(cat "$T/reader1.err")"
	[[ ! -s $T/recv1 ]] || fail "the first session read before it was told to"

	# Then the slow session reads, and gets everything too.
	kill -USR1 "$READER_PID"
	wait_exit "$READER_PID" 120 || fail "bob's slow session did not get all $n"
	READER_PID=
	assert_equal "$WAIT_STATUS" 0
	diff <(awk '{ print $2, $1 }' "$T/sent_bob") "$T/recv1" ||
	    fail "bob's slow session: pushes differ from the ids alice got"
	stop_server
}
