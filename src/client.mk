# The console client, mychat(1).
bin_PROGRAMS += src/mychat
src_mychat_SOURCES = src/client.c src/client.h \
	src/client-net.c src/client-ui.c src/client-chat.c \
	src/client-script.c src/client-log.c src/client-text.c \
	src/client-tls.c
src_mychat_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) \
	$(LIBEVENT_OPENSSL_CFLAGS) $(LIBEDIT_CFLAGS)
src_mychat_LDADD = src/libmychat.a $(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) \
	$(LIBEDIT_LIBS)

dist_man_MANS += doc/mychat.1

TESTS += t/client.bats t/client-interactive.bats t/client-tls.bats
EXTRA_DIST += t/client.bats t/client-interactive.bats t/client-tls.bats

# Unit tests of the client's text helpers.
check_PROGRAMS += t/client/test_text
t_client_test_text_SOURCES = t/client/test_text.c src/client-text.c
t_client_test_text_CFLAGS = $(AM_CFLAGS)
t_client_test_text_LDADD = src/libmychat.a
TESTS += t/client/test_text$(EXEEXT)
