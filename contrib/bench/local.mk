# contrib/bench/local.mk: the load generator and the side-by-side benchmark
# against ngircd and InspIRCd (issue 7), included from Makefile.am.
#
#   make bench          runs contrib/bench/compare against ./src/mychatd
#
# See doc/performance.md for the method and the latest figures.

noinst_PROGRAMS += contrib/bench/mychat-bench
contrib_bench_mychat_bench_SOURCES = contrib/bench/mychat-bench.c
contrib_bench_mychat_bench_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
contrib_bench_mychat_bench_LDADD = src/libmychat.a $(LIBEVENT_LIBS)

EXTRA_DIST += contrib/bench/compare doc/performance.md t/bench.bats

# One quick integrity run (2 s, 2 pairs) against a test server.
TESTS += t/bench.bats

# The full comparison: installs ngircd and inspircd from Debian if missing,
# needs root for that, takes several minutes. Not part of "make check".
.PHONY: bench
bench: contrib/bench/mychat-bench$(EXEEXT) src/mychatd$(EXEEXT)
	MYCHATD='$(abs_top_builddir)/src/mychatd' \
	MYCHAT_BENCH='$(abs_top_builddir)/contrib/bench/mychat-bench' \
	$(SHELL) $(top_srcdir)/contrib/bench/compare
