# The server. Everything but main() is in libmychatd.a, so that the fuzz
# harness can drive the real command path without listening sockets.
noinst_LIBRARIES += src/libmychatd.a
src_libmychatd_a_SOURCES = src/mychat.h \
	src/server.c src/listener.c src/conn.c src/cmd.c src/session.c \
	src/group.c src/auth.c src/passwd.c src/passwd.h src/tls.c src/limit.c \
	src/conf.c src/conf.h src/unacked.c src/unacked.h
src_libmychatd_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) \
	$(LIBEVENT_OPENSSL_CFLAGS) $(LIBCRYPT_CFLAGS)
MYCHATD_LIBS = src/libmychatd.a $(STORE_LIBS) src/libmychat.a \
	$(LIBEVENT_OPENSSL_LIBS) $(LIBEVENT_LIBS) $(LIBCRYPT_LIBS) -lpthread

sbin_PROGRAMS += src/mychatd
src_mychatd_SOURCES = src/mychatd.c
src_mychatd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBEVENT_OPENSSL_CFLAGS)
src_mychatd_LDADD = $(MYCHATD_LIBS)
