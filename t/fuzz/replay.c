/*
 * replay.c: feed inputs to the fuzz harness's LLVMFuzzerTestOneInput from
 * a plain main(), so that "make check" replays the seed corpus and the
 * regression inputs under gcc (and ASan/UBSan in the sanitizer build)
 * without clang. Prints TAP, one test per input.
 *
 *	replay [file | directory]...
 *
 * Without arguments it replays $TOP_SRCDIR/t/fuzz/corpus and
 * $TOP_SRCDIR/t/fuzz/regress (TOP_SRCDIR defaults to "."). A crash or a
 * sanitizer report ends the program with a non-zero status, which the TAP
 * driver counts as an error; the input being replayed is printed first.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_MAX_FILES	4096
#define REPLAY_MAX_SIZE		(1024 * 1024)

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	*replay_files[REPLAY_MAX_FILES];
static int	 replay_nfiles;

static int
replay_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Add path, or every regular file in it when it is a directory. */
static void
replay_add(const char *path)
{
	struct stat	 st;
	struct dirent	*de;
	DIR		*d;
	char		 buf[4096];

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (replay_nfiles == REPLAY_MAX_FILES) {
			fprintf(stderr, "replay: too many files\n");
			exit(1);
		}
		if ((replay_files[replay_nfiles++] = strdup(path)) == NULL)
			exit(1);
		return;
	}
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(buf, sizeof(buf), "%s/%s", path, de->d_name);
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode))
			replay_add(buf);
	}
	closedir(d);
}

/* Read a whole file into a fresh buffer (its exact size: ASan sees overruns). */
static uint8_t *
replay_read(const char *path, size_t *lenp)
{
	FILE	*fp;
	uint8_t	*buf, *exact;
	size_t	 len;

	if ((fp = fopen(path, "rb")) == NULL)
		return (NULL);
	if ((buf = malloc(REPLAY_MAX_SIZE)) == NULL)
		exit(1);
	len = fread(buf, 1, REPLAY_MAX_SIZE, fp);
	fclose(fp);
	if ((exact = malloc(len > 0 ? len : 1)) == NULL)
		exit(1);
	memcpy(exact, buf, len);
	free(buf);
	*lenp = len;
	return (exact);
}

int
main(int argc, char *argv[])
{
	const char	*top = getenv("TOP_SRCDIR");
	char		 path[4096];
	uint8_t		*data;
	size_t		 len;
	int		 i, failed = 0;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			replay_add(argv[i]);
	} else {
		if (top == NULL)
			top = ".";
		snprintf(path, sizeof(path), "%s/t/fuzz/corpus", top);
		replay_add(path);
		snprintf(path, sizeof(path), "%s/t/fuzz/regress", top);
		replay_add(path);
	}
	qsort(replay_files, (size_t)replay_nfiles, sizeof(char *), replay_cmp);

	printf("1..%d\n", replay_nfiles);
	fflush(stdout);
	LLVMFuzzerInitialize(&argc, &argv);
	for (i = 0; i < replay_nfiles; i++) {
		if ((data = replay_read(replay_files[i], &len)) == NULL) {
			printf("not ok %d - %s: %s\n", i + 1, replay_files[i],
			    strerror(errno));
			failed = 1;
			continue;
		}
		/* said before the run, so a crash names its input */
		printf("# replaying %s (%zu bytes)\n", replay_files[i], len);
		fflush(stdout);
		LLVMFuzzerTestOneInput(data, len);
		free(data);
		printf("ok %d - %s\n", i + 1, replay_files[i]);
		fflush(stdout);
	}
	for (i = 0; i < replay_nfiles; i++)
		free(replay_files[i]);
	return (failed);
}
