/* dl.c - optional libraries, loaded at their first use (see dl.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "dl.h"

int ferry_dl_load(struct ferry_dl *l)
{
	void *h;

	pthread_mutex_lock(&l->lock);
	if (!l->tried) {
		l->tried = 1;
		h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			fprintf(stderr, "ferry: cannot load %s (install %s): %s\n",
				l->soname, l->package, dlerror());
		__atomic_store_n(&l->handle, h, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&l->lock);
	return __atomic_load_n(&l->handle, __ATOMIC_ACQUIRE) != NULL;
}

void *ferry_dl_need(struct ferry_dl *l, const char *name)
{
	void *p;

	if (!ferry_dl_load(l)) {
		fprintf(stderr, "ferry: %s is needed for %s\n", l->soname, name);
		abort();
	}
	if (!(p = dlsym(l->handle, name))) {
		fprintf(stderr, "ferry: %s lacks %s\n", l->soname, name);
		abort();
	}
	return p;
}
