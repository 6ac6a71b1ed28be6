# t/hard.mk: hardening tests, the fuzz harness and its replay; included
# from Makefile.am.
#
#   make check	replays every input of t/fuzz/corpus and t/fuzz/regress
#		through the harness (t/fuzz/replay, built with the project's
#		compiler, so under ASan+UBSan in a --enable-sanitizers build)
#		and runs t/hardening.bats and t/faults.bats
#   make fuzz	builds the harness with clang -fsanitize=fuzzer,address,
#		undefined in fuzz-build/ and fuzzes for FUZZ_SECONDS (60)

# The harness from a plain main(): TAP, one test per input.
check_PROGRAMS += t/fuzz/replay
t_fuzz_replay_SOURCES = t/fuzz/replay.c t/fuzz/fuzz_server.c
t_fuzz_replay_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
t_fuzz_replay_LDADD = $(MYCHATD_LIBS)
TESTS += t/fuzz/replay$(EXEEXT)

# The libFuzzer binary, in a tree configured with CC=clang --enable-fuzz
# and CFLAGS holding -fsanitize=fuzzer-no-link,... (t/fuzz/run does it).
if FUZZ
noinst_PROGRAMS += t/fuzz/fuzz_server
t_fuzz_fuzz_server_SOURCES = t/fuzz/fuzz_server.c
t_fuzz_fuzz_server_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
t_fuzz_fuzz_server_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
t_fuzz_fuzz_server_LDADD = $(MYCHATD_LIBS)
endif

FUZZ_SECONDS = 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) TOP_BUILDDIR='$(abs_top_builddir)' \
	    $(SHELL) $(top_srcdir)/t/fuzz/run
.PHONY: fuzz

# Helpers of the black-box tests: hard-rst (RST, never-reading and
# trickling clients), hard-load (50 concurrent senders for kill -9).
check_PROGRAMS += t/tools/hard-rst t/tools/hard-load
t_tools_hard_rst_SOURCES = t/tools/hard-rst.c
t_tools_hard_load_SOURCES = t/tools/hard-load.c

# Black-box tests; faults.bats needs root for mount(8) and skips without.
TESTS += t/hardening.bats t/faults.bats

EXTRA_DIST += t/hard.mk t/hardening.bats t/faults.bats t/fuzz/run \
	t/fuzz/corpus t/fuzz/regress t/fuzz/mychat.dict doc/hardening.md
