/* passwd.h: yescrypt password hashes (libxcrypt), shared by mychatd and mychatctl. */
#ifndef MYCHAT_PASSWD_H
#define MYCHAT_PASSWD_H

#include <stddef.h>

struct crypt_data;

int	passwd_hash(const char *, char *, size_t);
int	passwd_check(const char *, const char *, struct crypt_data *);
void	passwd_wipe(void *, size_t);

#endif
