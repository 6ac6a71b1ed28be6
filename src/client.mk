# The console client, mychat(1).
bin_PROGRAMS += src/mychat
src_mychat_SOURCES = src/client.c src/client.h \
	src/client-net.c src/client-ui.c src/client-chat.c \
	src/client-script.c src/client-log.c src/client-text.c
src_mychat_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBEDIT_CFLAGS)
src_mychat_LDADD = src/libmychat.a $(LIBEVENT_LIBS) $(LIBEDIT_LIBS)

dist_man_MANS += doc/mychat.1

TESTS += t/client.bats t/client-interactive.bats
EXTRA_DIST += t/client.bats t/client-interactive.bats
