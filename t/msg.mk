# t/msg.mk: the messaging tests (issue 3), included from Makefile.am.
#
# t/unit/test_store: TAP unit tests of src/store.c through src/store.h.
# t/tools/sender: the test client the durability and slow-reader tests
# drive (pipelined tagged MSGs, a recipient that does not read, HISTORY
# dumps); built by "make check", found at $(TOP_BUILDDIR)/t/tools/sender.
# t/tools/stallsync.so: an LD_PRELOAD shim that holds fdatasync(2) while a
# file exists (durability.bats: nothing of a group leaves before its
# fsync). Built without the sanitizers: it is loaded before their runtime.

check_PROGRAMS += t/unit/test_store t/tools/sender
t_unit_test_store_SOURCES = t/unit/test_store.c t/unit/tap.h
t_unit_test_store_CFLAGS = $(AM_CFLAGS)
t_unit_test_store_LDADD = src/libmychatstore.a $(DB_LIBS) src/libmychat.a
t_tools_sender_SOURCES = t/tools/sender.c
t_tools_sender_CFLAGS = $(AM_CFLAGS)
check_PROGRAMS += t/tools/stallsync.so
t_tools_stallsync_so_SOURCES = t/tools/stallsync.c
t_tools_stallsync_so_CFLAGS = -std=c11 $(WARN_CFLAGS) -fPIC
t_tools_stallsync_so_LDFLAGS = -shared -fPIC

TESTS += t/unit/test_store$(EXEEXT) t/messaging.bats t/durability.bats \
	t/slowreader.bats

EXTRA_DIST += t/messaging.bats t/durability.bats t/slowreader.bats
