#!/usr/bin/env bats
#
# t/bench.bats: the load generator (contrib/bench/mychat-bench) against a
# test server. These tests check integrity, never speed: a short relay run
# must deliver every message exactly once and in order, and the generator
# must report a run that loses messages as FAILED.

load lib/common

: "${MYCHAT_BENCH:=$TOP_BUILDDIR/contrib/bench/mychat-bench}"

setup() {
	[[ -x $MYCHAT_BENCH ]] || fail "mychat-bench is not built: $MYCHAT_BENCH"
}

teardown() {
	mychat_teardown
}

@test "bench: a 2 s relay of 2 pairs loses, duplicates and reorders nothing" {
	start_server
	run timeout 120 "$MYCHAT_BENCH" relay --port "$PORT" --pairs 2 \
	    --window 8 --size 64 --duration 2 --run t1
	echo "$output"
	assert_success
	assert_line --regexp '^integrity: lost 0, duplicated 0, reordered 0, rejected 0, unanswered 0, stale 0$'
	assert_line --regexp '^RESULT mode=relay dialect=mychat status=ok msgs_per_s=[0-9]+ .* lost=0 dup=0 reorder=0$'
	refute_line --partial FAILED
	stop_server
}

@test "bench: --server-pid reports the server's CPU time per message" {
	local busy gone spin user sys

	start_server
	run timeout 120 "$MYCHAT_BENCH" relay --port "$PORT" --pairs 2 \
	    --window 8 --size 64 --duration 2 --run t3 --server-pid "$SERVER_PID"
	echo "$output"
	assert_success
	assert_line --regexp '^server CPU: busy [0-9]+% of [0-9.]+ s; per message [0-9]+ ns user, [0-9]+ ns system '
	assert_line --regexp '^RESULT mode=relay .* server_busy_pct=[0-9]+ server_user_ns=[0-9]+ server_sys_ns=[0-9]+ lost=0 '
	busy=$(grep -o 'server_busy_pct=[0-9]*' <<<"$output" | cut -d= -f2)
	(( busy > 0 )) || fail "server busy ${busy}% during the relay"

	# The figures are the right fields of /proc/PID/stat: a process that
	# spins in user space is busy, in user time. Fields read from the
	# wrong place (the fault counts before utime, the children's times
	# after stime) are 0 or system time here.
	# (it stops by itself after 60 s should the test be killed)
	bash -c 'end=$((SECONDS + 60)); while ((SECONDS < end)); do :; done' &
	spin=$!
	run timeout 120 "$MYCHAT_BENCH" relay --port "$PORT" --pairs 2 \
	    --window 8 --size 64 --duration 2 --run t5 --server-pid "$spin"
	kill "$spin"
	wait "$spin" || true
	echo "$output"
	assert_success
	busy=$(grep -o 'server_busy_pct=[0-9]*' <<<"$output" | cut -d= -f2)
	user=$(grep -o 'server_user_ns=[0-9]*' <<<"$output" | cut -d= -f2)
	sys=$(grep -o 'server_sys_ns=[0-9]*' <<<"$output" | cut -d= -f2)
	(( busy >= 10 && user > sys )) ||
	    fail "a spinning process: busy ${busy}%, user $user ns, system $sys ns"

	# A process that is gone gives no figure, and no made-up one.
	true &
	gone=$!
	wait "$gone"
	run timeout 120 "$MYCHAT_BENCH" relay --port "$PORT" --pairs 2 \
	    --window 8 --size 64 --duration 1 --run t4 --server-pid "$gone"
	echo "$output"
	assert_success
	assert_line "server CPU: unknown (could not read /proc/$gone/stat)"
	refute_line --partial 'server_busy_pct'
	stop_server
}

@test "bench: a server killed during the run makes it FAILED, not a number" {
	local bench_pid out i rc

	start_server
	out=$BATS_TEST_TMPDIR/bench.out
	timeout 120 "$MYCHAT_BENCH" relay --port "$PORT" --pairs 2 \
	    --window 8 --duration 30 --run t2 >"$out" 2>&1 3>&- &
	bench_pid=$!
	# Wait until the timed window starts: messages flow.
	for ((i = 0; i < 500; i++)); do
		grep -q '^setup: 4 connections logged in' "$out" && break
		sleep 0.02
	done
	grep -q '^setup: 4 connections logged in' "$out" ||
	    fail "$(printf 'the bench did not log in within 10 s:\n%s' "$(cat "$out")")"
	kill9_server
	rc=0
	wait "$bench_pid" || rc=$?
	cat "$out"
	[[ $rc -ne 0 ]] || fail "mychat-bench exited 0 after the server died"
	grep -q '^FAILED: ' "$out"
	grep -q '^RESULT mode=relay .*status=FAILED' "$out"
	if grep -q 'msgs_per_s=' "$out"; then
		fail "a failed run printed a throughput"
	fi
}

@test "bench: only loopback addresses may be loaded" {
	run "$MYCHAT_BENCH" relay --host 192.0.2.1 --port 5555 --duration 1
	assert_failure 2
	assert_output --partial 'only loopback addresses'
	run "$MYCHAT_BENCH" relay --host ::2 --port 5555 --duration 1
	assert_failure 2
}
