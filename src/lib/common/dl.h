/* dl.h - optional libraries, loaded at their first use (dl.c).
 *
 * libcurl, libnbd, libpq, libmicrohttpd and libsmbclient pull in GnuTLS,
 * libxml2 with ICU, Kerberos, LDAP and (Samba) a hundred more libraries.
 * Linked normally, the dynamic loader maps and relocates all of them at
 * every start of every ferry command, although most commands use none of
 * them: ferry --version took 23 ms of CPU, 8 without them.  So ferry does
 * not link them.  A *_dl.c file defines the library functions ferry calls,
 * with the header's own prototypes (the compiler checks each against
 * it), and each forwards to the real function, found with dlsym after one
 * dlopen of the library.
 *
 * An entry point (curl_easy_init, nbd_create, PQconnectdb, ...) first asks
 * ferry_dl_load() and fails as the library documents (NULL, an error
 * code) when the library is not installed; ferry_dl_load() has then said
 * which package to install, once, on stderr.  Every other function is
 * reached only with a handle an entry point returned, so the library is
 * loaded by then; a symbol missing from a loaded library is a broken
 * installation and aborts rather than call through NULL. */
#ifndef FERRY_DL_H
#define FERRY_DL_H

#include <pthread.h>
#include <string.h>

struct ferry_dl {
	const char *soname;  /* "libcurl.so.4" */
	const char *package; /* Debian's package that installs it */
	pthread_mutex_t lock;
	int tried;
	void *handle;
};

#define FERRY_DL_INIT(SONAME, PACKAGE) \
	{ SONAME, PACKAGE, PTHREAD_MUTEX_INITIALIZER, 0, NULL }

/* Load L once: 1 when it is there, 0 when not (reported once). */
int ferry_dl_load(struct ferry_dl *l);
/* L's symbol NAME; aborts when L or NAME is missing. */
void *ferry_dl_need(struct ferry_dl *l, const char *name);

/* A variable VAR of NAME's type pointing at L's NAME (looked up once). */
#define FERRY_DL_LOOKUP(L, NAME, VAR)                                        \
	__typeof__(NAME) *VAR;                                               \
	do {                                                                 \
		static void *sym_;                                           \
		void *q_ = __atomic_load_n(&sym_, __ATOMIC_ACQUIRE);         \
		if (!q_) {                                                   \
			q_ = ferry_dl_need(&(L), #NAME);                     \
			__atomic_store_n(&sym_, q_, __ATOMIC_RELEASE);       \
		}                                                            \
		memcpy(&VAR, &q_, sizeof(VAR));                              \
	} while (0)

/* Define NAME (returning RET, or void) as a forward to L's NAME. */
#define FERRY_DL_FN(L, RET, NAME, PARAMS, ARGS)                              \
	RET NAME PARAMS                                                      \
	{                                                                    \
		FERRY_DL_LOOKUP(L, NAME, fn_);                               \
		return fn_ ARGS;                                             \
	}
#define FERRY_DL_VOID(L, NAME, PARAMS, ARGS)                                 \
	void NAME PARAMS                                                     \
	{                                                                    \
		FERRY_DL_LOOKUP(L, NAME, fn_);                               \
		fn_ ARGS;                                                    \
	}
/* An entry point: without the library it returns FAIL. */
#define FERRY_DL_ENTRY(L, RET, NAME, PARAMS, ARGS, FAIL)                     \
	RET NAME PARAMS                                                      \
	{                                                                    \
		if (!ferry_dl_load(&(L)))                                    \
			return FAIL;                                         \
		FERRY_DL_LOOKUP(L, NAME, fn_);                               \
		return fn_ ARGS;                                             \
	}
/* A release function (free, close) of one TYPE argument: NULL, all it can
 * be given without the library, is a no-op. */
#define FERRY_DL_RELEASE(L, NAME, TYPE)                                      \
	void NAME(TYPE p_)                                                   \
	{                                                                    \
		if (!p_)                                                     \
			return;                                              \
		FERRY_DL_LOOKUP(L, NAME, fn_);                               \
		fn_(p_);                                                     \
	}

#endif
