# The server.
sbin_PROGRAMS += src/mychatd
src_mychatd_SOURCES = src/mychatd.c src/mychat.h \
	src/listener.c src/conn.c src/cmd.c src/session.c src/group.c \
	src/auth.c src/tls.c src/conf.c src/conf.h
src_mychatd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBEVENT_OPENSSL_CFLAGS) $(LIBCRYPT_CFLAGS)
src_mychatd_LDADD = $(STORE_LIBS) src/libmychat.a $(LIBEVENT_OPENSSL_LIBS) \
	$(LIBEVENT_LIBS) $(LIBCRYPT_LIBS) -lpthread
