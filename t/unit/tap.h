/*
 * tap.h: a tiny Test Anything Protocol helper for the C unit tests.
 *
 *	tap_ok(cond, "what is checked %d", n);
 *	tap_is_str(got, want, "what");
 *	tap_is_int(got, want, "what");
 *	return (tap_done());
 *
 * Each check prints "ok N - desc" or "not ok N - desc" (with a "#" line
 * telling the file, line and values); tap_done() prints the plan "1..N"
 * at the end. The exit status stays 0: the TAP lines carry the failures,
 * and automake's TAP driver counts a non-zero exit (a crash, a sanitizer
 * report) as an extra error.
 */
#ifndef MYCHAT_TAP_H
#define MYCHAT_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TAP_PRINTF(f, a) __attribute__((__format__(__printf__, f, a)))

static int	tap_count;
static int	tap_failed;

static inline int	tap_vok(int, const char *, int, const char *, va_list)
		    TAP_PRINTF(4, 0);
static inline int	tap_ok_at(int, const char *, int, const char *, ...)
		    TAP_PRINTF(4, 5);
static inline int	tap_is_str_at(const char *, const char *, const char *, int,
		    const char *, ...) TAP_PRINTF(5, 6);
static inline int	tap_is_int_at(long long, long long, const char *, int,
		    const char *, ...) TAP_PRINTF(5, 6);

/* Print one result line; returns cond so callers can chain diagnostics. */
static inline int
tap_vok(int cond, const char *file, int line, const char *fmt, va_list ap)
{
	tap_count++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s line %d\n", file, line);
	}
	fflush(stdout);
	return (cond);
}

/* Check a condition. */
static inline int
tap_ok_at(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	r = tap_vok(cond, file, line, fmt, ap);
	va_end(ap);
	return (r);
}

/* Check that two strings (either may be NULL) are equal. */
static inline int
tap_is_str_at(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
	va_list	ap;
	int	cond, r;

	if (got == NULL || want == NULL)
		cond = got == want;
	else
		cond = strcmp(got, want) == 0;
	va_start(ap, fmt);
	r = tap_vok(cond, file, line, fmt, ap);
	va_end(ap);
	if (!cond) {
		printf("#          got: %s%s%s\n", got ? "\"" : "",
		    got ? got : "NULL", got ? "\"" : "");
		printf("#     expected: %s%s%s\n", want ? "\"" : "",
		    want ? want : "NULL", want ? "\"" : "");
	}
	return (r);
}

/* Check that two integers are equal. */
static inline int
tap_is_int_at(long long got, long long want, const char *file, int line,
    const char *fmt, ...)
{
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	r = tap_vok(got == want, file, line, fmt, ap);
	va_end(ap);
	if (got != want)
		printf("#          got: %lld\n#     expected: %lld\n", got, want);
	return (r);
}

/* Print the plan and a summary comment; the value is the exit status. */
static inline int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# %d of %d checks failed\n", tap_failed, tap_count);
	fflush(stdout);
	return (0);
}

#define tap_ok(cond, ...) \
	tap_ok_at((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)
#define tap_is_str(got, want, ...) \
	tap_is_str_at((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define tap_is_int(got, want, ...) \
	tap_is_int_at((long long)(got), (long long)(want), __FILE__, \
	    __LINE__, __VA_ARGS__)

#endif
