# src/mychatctl.mk: the admin tool, the operator's documentation (mychatd(8),
# mychatd.conf(5), mychatctl(8)), the example configuration, the systemd
# unit and their tests. Included from Makefile.am.

# The admin tool works on the database directory through the store.
sbin_PROGRAMS += src/mychatctl
src_mychatctl_SOURCES = src/mychatctl.c src/conf.c src/conf.h \
	src/passwd.c src/passwd.h
src_mychatctl_CFLAGS = $(AM_CFLAGS) $(LIBCRYPT_CFLAGS)
src_mychatctl_LDADD = src/libmychatstore.a $(DB_LIBS) src/libmychat.a \
	$(LIBCRYPT_LIBS)

dist_man_MANS += doc/mychatd.8 doc/mychatd.conf.5 doc/mychatctl.8

# The example configuration: every key commented out, with its default.
dist_sysconf_DATA = etc/mychatd.conf

# The systemd unit, with the configured paths substituted. Override the
# directory with "make install systemdunitdir=/lib/systemd/system".
systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = contrib/mychatd.service
CLEANFILES += contrib/mychatd.service
EXTRA_DIST += contrib/mychatd.service.in

contrib/mychatd.service: $(srcdir)/contrib/mychatd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' \
	    -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	    $(srcdir)/contrib/mychatd.service.in > $@.tmp && mv $@.tmp $@

# Tests.
check_PROGRAMS += t/unit/test_conf
t_unit_test_conf_SOURCES = t/unit/test_conf.c t/unit/tap.h src/conf.c \
	src/conf.h
t_unit_test_conf_CFLAGS = $(AM_CFLAGS)
t_unit_test_conf_LDADD = src/libmychat.a

TESTS += t/unit/test_conf$(EXEEXT) t/conf.bats t/mychatctl.bats
EXTRA_DIST += t/conf.bats t/mychatctl.bats
