# t/tls.mk: the TLS tests of issue 6, included from Makefile.am.
#
# t/tools/starttls is a small OpenSSL client the tests drive: openssl
# s_client has no mychat STARTTLS mode and socat cannot upgrade a connection
# in the middle. It needs only libssl and libcrypto (configure already
# checked for OpenSSL with libevent_openssl; the .pc files put -lssl
# -lcrypto in LIBEVENT_OPENSSL_LIBS, named here explicitly anyway).

check_PROGRAMS += t/tools/starttls
t_tools_starttls_SOURCES = t/tools/starttls.c
t_tools_starttls_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_OPENSSL_CFLAGS)
t_tools_starttls_LDADD = -lssl -lcrypto

TESTS += t/tls.bats

EXTRA_DIST += t/tls.bats doc/tls.md
