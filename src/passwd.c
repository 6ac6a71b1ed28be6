/*
 * passwd.c: yescrypt hashes through libxcrypt: a fresh salt from the OS
 * for every new hash, and a timing-safe comparison for checks. Shared by
 * the server's hashing workers and the admin tool.
 */
#include "config.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "passwd.h"

#define PASSWD_METHOD	"$y$"	/* yescrypt, libxcrypt's preferred method */

/* Clear memory that held a password, where the compiler cannot skip it. */
void
passwd_wipe(void *p, size_t n)
{
#ifdef HAVE_EXPLICIT_BZERO
	explicit_bzero(p, n);
#else
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
#endif
}

/*
 * Hash a password into out at the default cost. 0 ok, -1 error. The
 * crypt_data (32 KiB) is on the heap.
 */
int
passwd_hash(const char *password, char *out, size_t outlen)
{
	struct crypt_data	*cd;
	char			*setting, *h;
	int			 rv = -1;

	if ((setting = crypt_gensalt_ra(PASSWD_METHOD, 0, NULL, 0)) == NULL)
		return (-1);
	if ((cd = calloc(1, sizeof(*cd))) != NULL) {
		h = crypt_r(password, setting, cd);
		if (h != NULL && h[0] != '*' && strlen(h) < outlen) {
			memcpy(out, h, strlen(h) + 1);
			rv = 0;
		}
		passwd_wipe(cd, sizeof(*cd));
		free(cd);
	}
	free(setting);
	return (rv);
}

/*
 * Check a password against a stored crypt(3) string, comparing in
 * constant time. 1 match, 0 mismatch, -1 error.
 */
int
passwd_check(const char *password, const char *stored, struct crypt_data *cd)
{
	const char	*h;
	size_t		 n, i;
	unsigned char	 diff = 0;

	h = crypt_r(password, stored, cd);
	if (h == NULL || h[0] == '*')
		return (-1);
	n = strlen(stored);
	if (strlen(h) != n)
		return (0);
	for (i = 0; i < n; i++)
		diff |= (unsigned char)(h[i] ^ stored[i]);
	return (diff == 0);
}
