/* xmalloc.h: allocators that never return NULL (tmux). */
#ifndef MYCHAT_XMALLOC_H
#define MYCHAT_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);

#endif
