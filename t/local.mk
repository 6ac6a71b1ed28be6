# t/local.mk: the test suite, included from Makefile.am.
#
# Every test speaks TAP and runs under automake's TAP driver, so each test
# case (each bats @test, each ok/not ok line of a C unit test) is counted by
# "make check" and in test-suite.log.
#
# Other fragments add their own tests with "TESTS += t/foo.bats" (and
# "EXTRA_DIST += t/foo.bats"); files ending in .bats run under bats, and
# any other test (a C program, a script) runs under the TAP driver
# directly, so it must print TAP itself ("1..N", "ok N - ...").
# Automake does not expand wildcards: list every test by name.

TEST_EXTENSIONS = .bats

# bats exits non-zero when a test failed; the TAP stream already says so,
# so its exit status is not counted a second time (--ignore-exit). A bats
# crash still shows up as a missing plan or too few tests.
BATS_LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) \
	$(top_srcdir)/build-aux/tap-driver.sh
AM_BATS_LOG_DRIVER_FLAGS = --ignore-exit
BATS_LOG_COMPILER = $(BATS) --tap

# C unit tests print TAP and exit 0; a non-zero exit (a crash, a
# sanitizer report) is an ERROR.
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) \
	$(top_srcdir)/build-aux/tap-driver.sh

AM_TESTS_ENVIRONMENT = \
	MYCHATD='$(abs_top_builddir)/src/mychatd'; export MYCHATD; \
	MYCHAT='$(abs_top_builddir)/src/mychat'; export MYCHAT; \
	MYCHATCTL='$(abs_top_builddir)/src/mychatctl'; export MYCHATCTL; \
	TOP_SRCDIR='$(abs_top_srcdir)'; export TOP_SRCDIR; \
	TOP_BUILDDIR='$(abs_top_builddir)'; export TOP_BUILDDIR;

# Unit tests of the shared code.
check_PROGRAMS += t/unit/test_proto
t_unit_test_proto_SOURCES = t/unit/test_proto.c t/unit/tap.h
t_unit_test_proto_CFLAGS = $(AM_CFLAGS)
t_unit_test_proto_LDADD = src/libmychat.a

TESTS += t/unit/test_proto$(EXEEXT)

check_PROGRAMS += t/unit/test_unacked
t_unit_test_unacked_SOURCES = t/unit/test_unacked.c t/unit/tap.h
t_unit_test_unacked_CFLAGS = $(AM_CFLAGS)
t_unit_test_unacked_LDADD = src/libmychatd.a src/libmychat.a

TESTS += t/unit/test_unacked$(EXEEXT)

# Black-box tests of the server.
TESTS += t/foundation.bats t/park.bats

EXTRA_DIST += t/lib/common.bash t/lib/tls.bash t/foundation.bats t/park.bats
