#!/usr/bin/env bats
#
# t/messaging.bats: black-box tests of messaging in mychatd (issue 3),
# written from doc/protocol.md: TO and its three outcomes, MSG and the
# live relay, the push format, text validation, the offline queue with
# cumulative ACK, receipts, several sessions per account, HISTORY, SYNC,
# WHO, retry tokens and notes to self.
#
# Most tests share one server (setup_file) and use their own account names;
# ids are compared only within one test. Tests that count every account
# online start their own server.

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

# UTC, ISO 8601 with milliseconds.
TIME_RE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

# Register account $2 on connection $1, then say QUIT and wait until the
# server has closed it: the account exists and is offline.
offline_account() {
	register_on "$1" "$2" pw || return 1
	send "$1" QUIT || return 1
	expect_reply "$1" 221 '^221 bye$' || return 1
	expect_eof "$1" || return 1
	conn_close "$1"
}

# On connection $1 (peer chosen), send MSG $2 and expect "250 <id> $3"
# ($3 a regex, default delivered or queued); sets MSGID.
msg_ok() {
	local how=${3:-'(delivered|queued)'}

	send "$1" "MSG $2" || return 1
	expect_reply "$1" 250 "^250 [0-9]+ $how\$" || return 1
	MSGID=${LAST_REPLY#250 }
	MSGID=${MSGID%% *}
}

# The next push on $1 must be message $2 from $3 (display name) with the
# text $4, byte for byte; sets PUSH_TIME.
expect_msg() {
	local c=$1 id=$2 from=$3 text=$4 rest

	expect_push "$c" "^MSG " || return 1
	if [[ $LINE != "MSG $id $from "* ]]; then
		fail "$(printf '%s: expected the push of message %s from %s\n  got: %s' \
		    "$c" "$id" "$from" "$LINE")"
		return 1
	fi
	rest=${LINE#"MSG $id $from "}
	PUSH_TIME=${rest%% *}
	if ! [[ $PUSH_TIME =~ ^${TIME_RE}$ ]]; then
		fail "$c: push time is not ISO 8601 UTC with ms: $PUSH_TIME"
		return 1
	fi
	assert_equal "${rest#* }" "$text"
}

# Send PING $2 on $1; the next line must be its reply: no push is pending.
no_more_pushes() {
	send "$1" "PING ${2:-end}" || return 1
	if [[ -n ${MYCHAT_PUSHQ[$1]:-} ]]; then
		fail "$1: unexpected pushes: ${MYCHAT_PUSHQ[$1]}"
		return 1
	fi
	expect_line "$1" "^200 PONG ${2:-end}\$"
}

# Register alice on a, carol on c and bob on b; a and c write to bob. Sets
# alice, carol and bob (the caller declares them local).
two_senders_to_bob() {
	alice=$(uniq_name a)
	carol=$(uniq_name c)
	bob=$(uniq_name b)
	register_on a "$alice" pw || return 1
	register_on c "$carol" pw || return 1
	register_on b "$bob" pw || return 1
	send a "TO $bob" || return 1
	expect_reply a 200 || return 1
	send c "TO $bob" || return 1
	expect_reply c 200
}

# Connection $1 (display name $2) sends $3, delivered to bob on b; sets
# MSGID.
relay_to_b() {
	msg_ok "$1" "$3" delivered || return 1
	expect_msg b "$MSGID" "$2" "$3"
}

# Read $2 replies "250 <id> $3" on connection $1 and append the ids to the
# caller's IDS array.
expect_stored() {
	local i id

	for ((i = 0; i < $2; i++)); do
		expect_reply "$1" 250 "^250 [0-9]+ $3\$" || return 1
		id=${LAST_REPLY#250 }
		IDS+=("${id%% *}")
	done
}

# Is $1 (ISO time) within 300 s of now? Not a speed check: a sanity check
# that the time is UTC and current.
time_is_now() {
	local t now

	t=$(date -u -d "$1" +%s) || { fail "bad time $1"; return 1; }
	now=$(date -u +%s)
	if ((t < now - 300 || t > now + 300)); then
		fail "time $1 is not now ($(date -u +%FT%TZ))"
		return 1
	fi
}

@test "TO: 404 unknown, 503 offline with the peer still set, 200 online" {
	local alice bob

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	offline_account b "$bob"

	send a "TO nobody_${RANDOM}x"
	expect_reply a 404 "^404 no such user nobody_[0-9]+x\$"
	send a "TO $bob"
	expect_reply a 503 "^503 $bob is offline, messages will be queued\$"
	# A 404 leaves the peer unchanged: the MSG still goes to bob.
	send a "TO ghost_${RANDOM}"
	expect_reply a 404 '^404 no such user ghost_[0-9]+$'
	msg_ok a "for bob while offline" queued
	id=$MSGID

	login_on b "$bob" pw
	assert_equal "$LAST_REPLY" "200 welcome $bob, 1 waiting"
	expect_msg b "$id" "$alice" "for bob while offline"

	# Online now; the name is case-insensitive, the reply uses the
	# display name.
	send a "TO ${bob^^}"
	expect_reply a 200 "^200 $bob is online\$"
	msg_ok a "for bob online" delivered
	expect_msg b "$MSGID" "$alice" "for bob online"
	((MSGID > id)) || fail "ids do not increase: $id then $MSGID"
}

@test "MSG before any TO: 400 no recipient; MSG without text: 501" {
	local alice

	alice=$(uniq_name a)
	register_on a "$alice" pw
	send a "MSG hello"
	expect_reply a 400 '^400 no recipient, use TO <name> first$'
	# A 404 does not set a peer.
	send a "TO $(uniq_name x)"
	expect_reply a 404
	send a "MSG hello"
	expect_reply a 400 '^400 no recipient, use TO <name> first$'
	send a "TO $alice"
	expect_reply a 200
	send a "MSG"
	expect_reply a 501 '^501 usage: MSG <text>$'
	send a "MSG "
	expect_reply a 501 '^501 usage: MSG <text>$'
	no_more_pushes a
}

@test "relay both ways: 250 delivered, pushes with id, display name, time, byte-exact text" {
	local alice bob text id
	local texts=(
		"hello bob"
		"grüße aus Köln – 日本語 😀 ü"
		$'tab\there\tand\t\ttwo'
		'two lines\nkept as an escape \\ and a backslash'
		' leading space'
		'trailing spaces  '
		'\'
		"x"
		"$(printf 'UTF-8 edge: \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbd \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf')"
	)

	alice=Alice_$RANDOM
	bob=bob_$RANDOM
	register_on a "$alice" pw
	register_on b "$bob" pw

	send a "TO $bob"
	expect_reply a 200 "^200 $bob is online\$"
	for text in "${texts[@]}"; do
		msg_ok a "$text" delivered
		expect_msg b "$MSGID" "$alice" "$text"
		time_is_now "$PUSH_TIME"
	done
	no_more_pushes b

	# The other way, naming alice in lower case: display name in replies
	# and pushes.
	send b "TO ${alice,,}"
	expect_reply b 200 "^200 $alice is online\$"
	msg_ok b "and back to you, ${alice}" delivered
	id=$MSGID
	expect_msg a "$id" "$bob" "and back to you, ${alice}"
	no_more_pushes a

	# HISTORY keeps the same bytes and time.
	send b "HISTORY $alice 1"
	expect_reply b 200
	assert_equal "${REPLY_LINES[0]}" \
	    "200-$id $bob $alice $PUSH_TIME and back to you, ${alice}"
}

@test "MSG: invalid UTF-8 is 400, control characters are 500; nothing is stored" {
	local alice bob first last

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	register_on b "$bob" pw
	send a "TO $bob"
	expect_reply a 200
	msg_ok a "before" delivered
	first=$MSGID
	expect_msg b "$first" "$alice" "before"

	local bad
	for bad in '\xff\xfe' 'caf\xc3' '\xc0\xaf' '\xed\xa0\x80' \
	    '\xf4\x90\x80\x80' '\xe2\x82' 'ok \x80 no'; do
		send_raw a "MSG $bad\r\n"
		expect_reply a 400 '^400 text must be UTF-8 without control characters$'
	done
	# doc/protocol.md, Framing: a control character other than TAB in a
	# command line is "500 invalid characters in command line".
	for bad in 'a\x01b' 'a\x7fb' 'a\x1bb' 'bell\x07' 'a\x00b' 'cr\rin the middle'; do
		send_raw a "MSG $bad\r\n"
		expect_reply a 500 '^500 invalid characters in command line$'
	done
	msg_ok a "after" delivered
	last=$MSGID
	expect_msg b "$last" "$alice" "after"
	no_more_pushes b
	# Nothing was stored in between: no id was used, HISTORY has two.
	assert_equal "$last" "$((first + 1))"
	send b "HISTORY $alice"
	expect_reply b 200 '^200 2 messages$'
	assert_equal "${#REPLY_LINES[@]}" 3
	assert_regex "${REPLY_LINES[0]}" "^200-$first $alice $bob $TIME_RE before\$"
	assert_regex "${REPLY_LINES[1]}" "^200-$last $alice $bob $TIME_RE after\$"
}

@test "offline queue: 100 queued, delivered in order at login; ACK 60, relogin gets exactly 61..100" {
	local alice bob i buf ids=() id

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	offline_account b "$bob"
	send a "TO $bob"
	expect_reply a 503

	# 100 messages pipelined in one write.
	buf=
	for ((i = 1; i <= 100; i++)); do
		buf+="MSG queued $i of 100"$'\r\n'
	done
	send_raw a '%s' "$buf"
	for ((i = 1; i <= 100; i++)); do
		expect_reply a 250 '^250 [0-9]+ queued$'
		id=${LAST_REPLY#250 }
		id=${id%% *}
		if ((i > 1 && id <= ids[i - 2])); then
			fail "ids do not increase: ${ids[i - 2]} then $id"
		fi
		ids+=("$id")
	done

	login_on b "$bob" pw
	assert_equal "$LAST_REPLY" "200 welcome $bob, 100 waiting"
	for ((i = 1; i <= 100; i++)); do
		expect_msg b "${ids[i - 1]}" "$alice" "queued $i of 100"
	done
	no_more_pushes b

	# Cumulative ACK of the 60th; the sender gets the receipt.
	send b "ACK ${ids[59]}"
	expect_reply b 200 "^200 acked ${ids[59]}\$"
	expect_push a "^ACKED ${ids[59]} $bob\$"

	# Drop without acking the rest, log in again: exactly 61..100.
	conn_close b
	login_on b2 "$bob" pw
	assert_equal "$LAST_REPLY" "200 welcome $bob, 40 waiting"
	for ((i = 61; i <= 100; i++)); do
		expect_msg b2 "${ids[i - 1]}" "$alice" "queued $i of 100"
	done
	no_more_pushes b2

	# ACK everything: the next login has nothing waiting.
	send b2 "ACK ${ids[99]}"
	expect_reply b2 200 "^200 acked ${ids[99]}\$"
	expect_push a "^ACKED ${ids[99]} $bob\$"
	login_on b3 "$bob" pw
	assert_equal "$LAST_REPLY" "200 welcome $bob, 0 waiting"
	no_more_pushes b3
}

@test "ACK: not addressed to you is 404; acking again is a harmless 200 without a receipt" {
	local alice bob carol id_c id_b

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	carol=$(uniq_name c)
	register_on a "$alice" pw
	register_on b "$bob" pw
	offline_account c "$carol"

	send a "TO $carol"
	expect_reply a 503
	msg_ok a "for carol only" queued
	id_c=$MSGID
	send a "TO $bob"
	expect_reply a 200
	msg_ok a "for bob" delivered
	id_b=$MSGID
	expect_msg b "$id_b" "$alice" "for bob"

	# carol's message, a message bob sent, an id never used.
	send b "ACK $id_c"
	expect_reply b 404 "^404 no message $id_c for you\$"
	send b "TO $alice"
	expect_reply b 200
	msg_ok b "from bob" delivered
	expect_msg a "$MSGID" "$bob" "from bob"
	send b "ACK $MSGID"
	expect_reply b 404 "^404 no message $MSGID for you\$"
	send b "ACK 9223372036854775807"
	expect_reply b 404 '^404 no message 9223372036854775807 for you$'

	send b "ACK $id_b"
	expect_reply b 200 "^200 acked $id_b\$"
	expect_push a "^ACKED $id_b $bob\$"
	send b "ACK $id_b"
	expect_reply b 200 "^200 acked $id_b\$"
	no_more_pushes a after-second-ack

	# carol's message is still waiting for her.
	login_on c "$carol" pw
	assert_equal "$LAST_REPLY" "200 welcome $carol, 1 waiting"
	expect_msg c "$id_c" "$alice" "for carol only"
}

@test "receipts: ACKED <id> <by> reaches every connected session of the sender" {
	local alice bob id

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a1 "$alice" pw
	login_on a2 "$alice" pw
	login_on a3 "$alice" pw
	register_on b "$bob" pw

	send a1 "TO $bob"
	expect_reply a1 200
	msg_ok a1 "one" delivered
	expect_msg b "$MSGID" "$alice" "one"
	msg_ok a1 "two" delivered
	id=$MSGID
	expect_msg b "$id" "$alice" "two"

	send b "ACK $id"
	expect_reply b 200 "^200 acked $id\$"
	expect_push a1 "^ACKED $id $bob\$"
	expect_push a2 "^ACKED $id $bob\$"
	expect_push a3 "^ACKED $id $bob\$"
	no_more_pushes a1
	no_more_pushes a2
	no_more_pushes a3
}

@test "receipts: one ACKED per sender when an ACK covers messages of two senders" {
	local alice carol bob ida idc

	two_senders_to_bob
	relay_to_b a "$alice" "from alice"
	ida=$MSGID
	relay_to_b c "$carol" "from carol"
	idc=$MSGID

	send b "ACK $idc"
	expect_reply b 200 "^200 acked $idc\$"
	# Each sender is told about its own messages, up to its last one.
	expect_push a "^ACKED $ida $bob\$"
	expect_push c "^ACKED $idc $bob\$"
	no_more_pushes a
	no_more_pushes c
}

@test "receipts: exact ids per sender when an ACK covers part of interleaved messages" {
	local alice carol bob a1 c2 a3 c4

	two_senders_to_bob
	relay_to_b a "$alice" a1
	a1=$MSGID
	relay_to_b c "$carol" c2
	c2=$MSGID
	relay_to_b a "$alice" a3
	a3=$MSGID
	relay_to_b c "$carol" c4
	c4=$MSGID

	# Up to a3: alice's receipt names a3, carol's names c2, not c4.
	send b "ACK $a3"
	expect_reply b 200 "^200 acked $a3\$"
	expect_push a "^ACKED $a3 $bob\$"
	expect_push c "^ACKED $c2 $bob\$"
	no_more_pushes a
	no_more_pushes c
	# The rest: carol only.
	send b "ACK $c4"
	expect_reply b 200 "^200 acked $c4\$"
	expect_push c "^ACKED $c4 $bob\$"
	no_more_pushes a
	no_more_pushes c
}

@test "receipts: right after a backlog queued offline, and past 256 unacknowledged messages" {
	local alice carol bob q l cm buf i ids=() IDS=()

	alice=$(uniq_name a)
	carol=$(uniq_name c)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	register_on c "$carol" pw
	offline_account b "$bob"
	send c "TO $bob"
	expect_reply c 503
	msg_ok c "queued" queued
	q=$MSGID

	# One ACK over carol's message queued offline and alice's delivered
	# live: both senders get a receipt.
	login_on b "$bob" pw
	expect_msg b "$q" "$carol" "queued"
	send a "TO $bob"
	expect_reply a 200
	msg_ok a "live" delivered
	l=$MSGID
	expect_msg b "$l" "$alice" "live"
	send b "ACK $l"
	expect_reply b 200 "^200 acked $l\$"
	expect_push a "^ACKED $l $bob\$"
	expect_push c "^ACKED $q $bob\$"
	no_more_pushes a first
	no_more_pushes c first

	# 150 from alice, 1 from carol, 150 from alice, none acknowledged:
	# more than the server keeps in memory (UNACKED_MAX, 256). ACK
	# alice's 100th, then the last, then one more message.
	buf=
	for ((i = 1; i <= 300; i++)); do
		buf+="MSG many $i"$'\r\n'
	done
	send_raw a '%s' "${buf%%MSG many 151*}"
	expect_stored a 150 delivered
	msg_ok c "middle" delivered
	cm=$MSGID
	send_raw a '%s' "MSG many 151${buf#*MSG many 151}"
	expect_stored a 150 delivered
	ids=("${IDS[@]}")
	for ((i = 1; i <= 150; i++)); do
		expect_msg b "${ids[i - 1]}" "$alice" "many $i"
	done
	expect_msg b "$cm" "$carol" "middle"
	for ((i = 151; i <= 300; i++)); do
		expect_msg b "${ids[i - 1]}" "$alice" "many $i"
	done
	send b "ACK ${ids[99]}"
	expect_reply b 200 "^200 acked ${ids[99]}\$"
	expect_push a "^ACKED ${ids[99]} $bob\$"
	no_more_pushes c second
	send b "ACK ${ids[299]}"
	expect_reply b 200 "^200 acked ${ids[299]}\$"
	expect_push a "^ACKED ${ids[299]} $bob\$"
	expect_push c "^ACKED $cm $bob\$"
	no_more_pushes a third
	no_more_pushes c third
	msg_ok a "after" delivered
	expect_msg b "$MSGID" "$alice" "after"
	send b "ACK $MSGID"
	expect_reply b 200 "^200 acked $MSGID\$"
	expect_push a "^ACKED $MSGID $bob\$"
	no_more_pushes a fourth

	login_on b2 "$bob" pw
	assert_equal "$LAST_REPLY" "200 welcome $bob, 0 waiting"
}

@test "two sessions of one account both get every push" {
	local alice bob id

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	register_on b1 "$bob" pw
	login_on b2 "$bob" pw
	send a "TO $bob"
	expect_reply a 200 "^200 $bob is online\$"
	msg_ok a "to both devices" delivered
	id=$MSGID
	expect_msg b1 "$id" "$alice" "to both devices"
	local t1=$PUSH_TIME
	expect_msg b2 "$id" "$alice" "to both devices"
	assert_equal "$PUSH_TIME" "$t1"

	# One device leaves: the other still gets pushes; the peer is online.
	send b1 QUIT
	expect_reply b1 221
	expect_eof b1
	send a "TO $bob"
	expect_reply a 200 "^200 $bob is online\$"
	msg_ok a "to the remaining one" delivered
	expect_msg b2 "$MSGID" "$alice" "to the remaining one"
	no_more_pushes b2
}

@test "HISTORY: both directions, oldest first, from either side, exact line format" {
	local alice bob carol i ids=() from to texts=()

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	carol=$(uniq_name c)
	register_on a "$alice" pw
	offline_account b "$bob"
	register_on c "$carol" pw
	# bob is offline: HISTORY works for offline peers.
	send c "TO $alice"
	expect_reply c 200
	msg_ok c "carol's, not in the conversation" delivered
	for i in 1 2 3 4 5; do
		if ((i % 2)); then
			send a "TO $bob"
			expect_reply a 503
			msg_ok a "a to b number $i" queued
		else
			login_on b "$bob" pw
			send b "TO $alice"
			expect_reply b 200
			msg_ok b "b to a number $i" delivered
			conn_close b
		fi
		ids+=("$MSGID")
	done

	send a "HISTORY $bob"
	expect_reply a 200 '^200 5 messages$'
	assert_equal "${#REPLY_LINES[@]}" 6
	for i in 1 2 3 4 5; do
		if ((i % 2)); then
			from=$alice to=$bob
			text="a to b number $i"
		else
			from=$bob to=$alice
			text="b to a number $i"
		fi
		assert_regex "${REPLY_LINES[i - 1]}" \
		    "^200-${ids[i - 1]} $from $to $TIME_RE $text\$"
	done

	login_on b "$bob" pw
	send b "HISTORY ${alice^^}"
	expect_reply b 200 '^200 5 messages$'
	local mine=("${REPLY_LINES[@]}")
	send a "HISTORY $bob"
	expect_reply a 200 '^200 5 messages$'
	assert_equal "$(printf '%s\n' "${mine[@]}")" \
	    "$(printf '%s\n' "${REPLY_LINES[@]}")"

	# No conversation yet: zero messages, still 200.
	send c "HISTORY $bob"
	expect_reply c 200 '^200 0 messages$'
	assert_equal "${#REPLY_LINES[@]}" 1
}

@test "HISTORY: default count 50, paging with count and before-id" {
	local alice bob i buf ids=() IDS=() id n

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	offline_account b "$bob"
	send a "TO $bob"
	expect_reply a 503
	buf=
	for ((i = 1; i <= 55; i++)); do
		buf+="MSG page $i"$'\r\n'
	done
	send_raw a '%s' "$buf"
	expect_stored a 55 queued
	ids=("${IDS[@]}")

	# Default: the newest 50, oldest first; more before the first listed.
	send a "HISTORY $bob"
	expect_reply a 200 "^200 50 messages, more before ${ids[5]}\$"
	assert_equal "${#REPLY_LINES[@]}" 51
	for ((i = 6; i <= 55; i++)); do
		assert_regex "${REPLY_LINES[i - 6]}" \
		    "^200-${ids[i - 1]} $alice $bob $TIME_RE page $i\$"
	done

	# Page backwards by 20: 36..55, 16..35, 1..15.
	send a "HISTORY $bob 20"
	expect_reply a 200 "^200 20 messages, more before ${ids[35]}\$"
	assert_regex "${REPLY_LINES[0]}" "^200-${ids[35]} .* page 36\$"
	assert_regex "${REPLY_LINES[19]}" "^200-${ids[54]} .* page 55\$"
	send a "HISTORY $bob 20 ${ids[35]}"
	expect_reply a 200 "^200 20 messages, more before ${ids[15]}\$"
	assert_regex "${REPLY_LINES[0]}" "^200-${ids[15]} .* page 16\$"
	assert_regex "${REPLY_LINES[19]}" "^200-${ids[34]} .* page 35\$"
	send a "HISTORY $bob 20 ${ids[15]}"
	expect_reply a 200 '^200 15 messages$'
	assert_equal "${#REPLY_LINES[@]}" 16
	assert_regex "${REPLY_LINES[0]}" "^200-${ids[0]} .* page 1\$"
	assert_regex "${REPLY_LINES[14]}" "^200-${ids[14]} .* page 15\$"
	# Exactly the rest: no "more".
	send a "HISTORY $bob 15 ${ids[15]}"
	expect_reply a 200 '^200 15 messages$'
	send a "HISTORY $bob 50 ${ids[0]}"
	expect_reply a 200 '^200 0 messages$'
	# before-id that is not one of theirs still bounds by id.
	send a "HISTORY $bob 1 $((ids[54] + 1000000))"
	expect_reply a 200 "^200 1 messages, more before ${ids[54]}\$"
	assert_regex "${REPLY_LINES[0]}" "^200-${ids[54]} .* page 55\$"
}

@test "HISTORY: unknown user 404, bad arguments 501, login required" {
	register_on a "$(uniq_name a)" pw
	send a "HISTORY nobody_$RANDOM"
	expect_reply a 404 '^404 no such user nobody_[0-9]+$'
	send a "HISTORY"
	expect_reply a 501 '^501 usage: HISTORY'
	send a "HISTORY x abc"
	expect_reply a 501
	conn_open n
	send n "HISTORY x"
	expect_reply n 401 '^401 log in first$'
	send n "SYNC 0"
	expect_reply n 401 '^401 log in first$'
	send n "TO x"
	expect_reply n 401 '^401 log in first$'
	send n "MSG x"
	expect_reply n 401 '^401 log in first$'
	send n "ACK 1"
	expect_reply n 401 '^401 log in first$'
	send n "WHO"
	expect_reply n 401 '^401 log in first$'
}

@test "SYNC: every message to and from you, oldest first, paged with the cursor" {
	local alice bob carol dave i ids=() lines=() cursor n more

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	carol=$(uniq_name c)
	dave=$(uniq_name d)
	register_on a "$alice" pw
	register_on b "$bob" pw
	register_on c "$carol" pw
	register_on d "$dave" pw
	send a "TO $bob"
	expect_reply a 200
	send b "TO $alice"
	expect_reply b 200
	send c "TO $alice"
	expect_reply c 200
	send d "TO $bob"
	expect_reply d 200

	# Before anything: the cursor is the id asked for.
	send a "SYNC 0"
	expect_reply a 200 '^200 0 messages, cursor 0$'

	# alice's messages interleaved with one she is not part of.
	for i in 1 2 3 4 5 6 7; do
		case $((i % 3)) in
		1) msg_ok a "s$i"; ids+=("$MSGID") ;;
		2) msg_ok b "s$i"; ids+=("$MSGID") ;;
		0) msg_ok c "s$i"; ids+=("$MSGID") ;;
		esac
		msg_ok d "not alice's $i"
	done

	send a "SYNC $((ids[0] - 1))"
	expect_reply a 200 "^200 7 messages, cursor ${ids[6]}\$"
	assert_equal "${#REPLY_LINES[@]}" 8
	for i in 1 2 3 4 5 6 7; do
		assert_regex "${REPLY_LINES[i - 1]}" "^200-${ids[i - 1]} [^ ]+ [^ ]+ $TIME_RE s$i\$"
	done
	assert_regex "${REPLY_LINES[0]}" "^200-${ids[0]} $alice $bob "
	assert_regex "${REPLY_LINES[1]}" "^200-${ids[1]} $bob $alice "
	assert_regex "${REPLY_LINES[2]}" "^200-${ids[2]} $carol $alice "

	# Pages of 3 with the cursor: 3 + 3 + 1, "more" on all but the last.
	cursor=$((ids[0] - 1))
	n=0
	for i in 1 2 3; do
		send a "SYNC $cursor 3"
		expect_reply a 200 '^200 [0-9]+ messages, cursor [0-9]+(, more)?$'
		lines+=("${REPLY_LINES[@]:0:${#REPLY_LINES[@]}-1}")
		if ((i < 3)); then
			assert_equal "$LAST_REPLY" "200 3 messages, cursor ${ids[i * 3 - 1]}, more"
		else
			assert_equal "$LAST_REPLY" "200 1 messages, cursor ${ids[6]}"
		fi
		cursor=${LAST_REPLY#*cursor }
		cursor=${cursor%%,*}
	done
	assert_equal "${#lines[@]}" 7
	for i in 1 2 3 4 5 6 7; do
		assert_regex "${lines[i - 1]}" "^200-${ids[i - 1]} .* s$i\$"
	done
	send a "SYNC $cursor 3"
	expect_reply a 200 "^200 0 messages, cursor $cursor\$"

	# bob sees his own view: s1, s2, s4, s5, s7 and dave's.
	send b "SYNC $((ids[0] - 1)) 1000"
	expect_reply b 200 "^200 12 messages, cursor [0-9]+\$"
}

@test "WHO: the accounts online and their count" {
	start_server
	register_on a Alice1 pw
	register_on b bob1 pw
	login_on b2 bob1 pw
	offline_account c carol1

	send a WHO
	expect_reply a 200 '^200 2 online$'
	assert_equal "${#REPLY_LINES[@]}" 3
	assert_equal "$(printf '%s\n' "${REPLY_LINES[@]:0:2}" | sort)" \
	    "$(printf '%s\n' 200-Alice1 200-bob1)"

	# bob leaves from both devices: WHO follows (waiting for the
	# server to close the connections, not sleeping).
	send b QUIT
	expect_reply b 221
	expect_eof b
	send b2 QUIT
	expect_reply b2 221
	expect_eof b2
	send a who
	expect_reply a 200 '^200 1 online$'
	assert_equal "${REPLY_LINES[0]}" "200-Alice1"
}

@test "retry token: the same @token gives the original id, 'already stored', one copy" {
	local alice bob id

	# Its own server: a crash here must not take the other tests along.
	start_server
	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	register_on b "$bob" pw
	register_on c "$(uniq_name c)" pw
	send a "TO $bob"
	expect_reply a 200
	send a "@tok1 MSG once only"
	expect_reply a 250 '^250 [0-9]+ delivered$'
	id=${LAST_REPLY#250 }
	id=${id%% *}
	expect_msg b "$id" "$alice" "once only"
	send a "@tok1 MSG once only"
	expect_reply a 250 "^250 $id already stored\$"
	# From another session of the same account (a reconnecting client).
	login_on a2 "$alice" pw
	send a2 "TO $bob"
	expect_reply a2 200
	send a2 "@tok1 MSG once only"
	expect_reply a2 250 "^250 $id already stored\$"
	# Pipelined twice in one write.
	send_raw a2 '@tok2:x.y_z-9 MSG pair\r\n@tok2:x.y_z-9 MSG pair\r\n'
	expect_reply a2 250 '^250 [0-9]+ delivered$'
	local id2=${LAST_REPLY#250 }
	id2=${id2%% *}
	expect_reply a2 250 "^250 $id2 already stored\$"
	expect_msg b "$id2" "$alice" "pair"
	no_more_pushes b

	send b "HISTORY $alice"
	expect_reply b 200 '^200 2 messages$'
	assert_regex "${REPLY_LINES[0]}" "^200-$id $alice $bob $TIME_RE once only\$"
	assert_regex "${REPLY_LINES[1]}" "^200-$id2 $alice $bob $TIME_RE pair\$"

	# Tokens belong to their sender: the same token from c is a new one.
	send c "TO $bob"
	expect_reply c 200
	send c "@tok1 MSG once only"
	expect_reply c 250 '^250 [0-9]+ delivered$'
	local id3=${LAST_REPLY#250 }
	id3=${id3%% *}
	((id3 > id2)) || fail "c's @tok1 got id $id3, not a new one"

	# A bad token is refused, nothing stored.
	send a "@bad/token MSG x"
	expect_reply a 501 '^501 bad token'
	send a "@$(filler 65) MSG x"
	expect_reply a 501 '^501 bad token'
}

@test "TO yourself: 200 online, the note is pushed to you and listed once" {
	local alice id

	alice=$(uniq_name a)
	register_on a "$alice" pw
	login_on a2 "$alice" pw
	send a "TO $alice"
	expect_reply a 200 "^200 $alice is online\$"
	msg_ok a "note to self" delivered
	id=$MSGID
	expect_msg a "$id" "$alice" "note to self"
	expect_msg a2 "$id" "$alice" "note to self"
	send a "HISTORY $alice"
	expect_reply a 200 '^200 1 messages$'
	assert_regex "${REPLY_LINES[0]}" "^200-$id $alice $alice $TIME_RE note to self\$"
	send a "SYNC $((id - 1))"
	expect_reply a 200 "^200 1 messages, cursor $id\$"
	send a "ACK $id"
	expect_reply a 200 "^200 acked $id\$"
}

@test "pipelined: TO, MSG and ACK of that message in one write" {
	local alice id

	alice=$(uniq_name a)
	register_on a "$alice" pw
	send a "TO $alice"
	expect_reply a 200
	msg_ok a "first" delivered
	id=$MSGID
	expect_msg a "$id" "$alice" "first"
	# The ACK names the id that the MSG just before it will get.
	send_raw a 'MSG second\r\nACK %s\r\n' "$((id + 1))"
	expect_reply a 250 "^250 $((id + 1)) delivered\$"
	expect_reply a 200 "^200 acked $((id + 1))\$"
}

@test "pipelined after LOGIN: LOGIN, TO, MSG and an ACK of that message in one write" {
	# Its own server, so that the ids are known in advance.
	start_server
	offline_account a alice
	conn_open a
	# The commands after LOGIN wait for the password check, then run
	# together; the ACK names the id the MSG before it gets (1).
	send_raw a 'LOGIN alice pw\r\nTO alice\r\nMSG note\r\nACK 1\r\nPING done\r\n'
	expect_reply a 200 '^200 welcome alice, 0 waiting$'
	expect_reply a 200 '^200 alice is online$'
	expect_reply a 250 '^250 1 delivered$'
	expect_reply a 200 '^200 acked 1$'
	expect_reply a 200 '^200 PONG done$'
	expect_msg a 1 alice "note"
}

@test "event log: one line per message with id, from, to and size, never the text" {
	local alice bob id secret

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	offline_account b "$bob"
	secret="s3cr3t-text-$RANDOM$RANDOM"
	send a "TO $bob"
	expect_reply a 503
	msg_ok a "$secret 😀" queued
	id=$MSGID
	# The 250 is sent after the commit; the event line is written by then
	# or very soon after: wait for it with a timeout.
	local deadline=$((SECONDS + MYCHAT_TIMEOUT))
	until grep -q "message $id " "$SERVER_LOG"; do
		((SECONDS < deadline)) || fail "no event line for message $id"
		sleep 0.05
	done
	grep "message $id " "$SERVER_LOG"
	grep -Eq "message $id from $alice to $bob size $((${#secret} + 5))\$" \
	    "$SERVER_LOG" || fail "the event line lacks id, from, to or size"
	! grep -q "$secret" "$SERVER_LOG" || fail "the message text is in the log"
	grep -Eq "register $alice( |$)" "$SERVER_LOG" ||
	    fail "no event line for the registration of $alice"
}

@test "452: a recipient with too many pending messages; ACK makes room" {
	local conf=$BATS_TEST_TMPDIR/mychatd.conf id

	printf 'max-pending 3\n' >"$conf"
	start_server -c "$conf"
	register_on a alice pw
	offline_account b bob
	send a "TO bob"
	expect_reply a 503
	msg_ok a "p1" queued
	msg_ok a "p2" queued
	msg_ok a "p3" queued
	id=$MSGID
	send a "MSG p4"
	expect_reply a 452 '^452 bob has too many pending messages$'

	login_on b bob pw
	assert_equal "$LAST_REPLY" "200 welcome bob, 3 waiting"
	expect_msg b 1 alice p1
	expect_msg b 2 alice p2
	expect_msg b 3 alice p3
	no_more_pushes b
	send b "ACK $id"
	expect_reply b 200 "^200 acked $id\$"
	expect_push a "^ACKED $id bob\$"
	msg_ok a "p5" delivered
	expect_msg b "$MSGID" alice p5
	# p4 was not stored.
	send b "HISTORY alice"
	expect_reply b 200 '^200 4 messages$'
}

@test "HISTORY: a reply is cut at about 256 KiB of text and says more" {
	local alice bob i ids=() n

	alice=$(uniq_name a)
	bob=$(uniq_name b)
	register_on a "$alice" pw
	offline_account b "$bob"
	send a "TO $bob"
	expect_reply a 503
	# 8 messages of 60,000 bytes: 480,000 bytes of text.
	for ((i = 1; i <= 8; i++)); do
		send_long a "MSG big$i-" 60004
		expect_reply a 250 '^250 [0-9]+ queued$'
		ids+=("$(cut -d' ' -f2 <<<"$LAST_REPLY")")
	done
	send a "HISTORY $bob 8"
	expect_reply a 200 '^200 [0-9]+ messages, more before [0-9]+$'
	n=$((${#REPLY_LINES[@]} - 1))
	echo "HISTORY listed $n of 8"
	((n >= 1 && n < 8)) || fail "$n messages listed: not cut near 256 KiB"
	((n * 60000 <= 300 * 1024)) || fail "$n x 60000 bytes is well over 256 KiB"
	# The newest ones, oldest first, and "more before" the first listed.
	assert_regex "${REPLY_LINES[n - 1]}" "^200-${ids[7]} $alice $bob $TIME_RE big8-x+\$"
	assert_regex "${REPLY_LINES[0]}" "^200-${ids[8 - n]} .* big$((9 - n))-x+\$"
	assert_equal "$LAST_REPLY" "200 $n messages, more before ${ids[8 - n]}"
}
