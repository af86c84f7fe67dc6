/* smb_dl.c - libsmbclient, loaded when an smb:// repository is first
 * used instead of when ferry starts.
 *
 * libsmbclient pulls in about 90 further Samba, Kerberos, LDAP and GnuTLS
 * libraries: linked normally, the dynamic loader resolved symbols in 136
 * libraries at every start of ferry, about 95 ms of CPU (70 % of it in
 * ld.so's symbol lookup) before main(), for every command, also for those
 * that never touch SMB (the benchmark's backups and restores among them).
 * Without it ferry starts with about 48 libraries.
 *
 * These definitions have the names and prototypes of <libsmbclient.h>,
 * so store_smb.c and smb_locks.c call them as before; each forwards to
 * the library's own function.  The executable does not export them (it
 * is not linked with -rdynamic), so the library's internal calls keep
 * binding to its own definitions.  If the library cannot be loaded,
 * smbc_new_context() fails with errno ELIBACC and the caller reports it
 * like any other failure to connect. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include <libsmbclient.h>

#define SMB_LIB "libsmbclient.so.0"

/* Every function used, looked up together: a library missing one of
 * them is not used at all. */
#define SMB_FUNCS(X)                                                       \
	X(smbc_new_context)                                                \
	X(smbc_free_context)                                               \
	X(smbc_init_context)                                               \
	X(smbc_setDebug)                                                   \
	X(smbc_setOptionUserData)                                          \
	X(smbc_getOptionUserData)                                          \
	X(smbc_setFunctionAuthDataWithContext)                             \
	X(smbc_setOptionNoAutoAnonymousLogin)                              \
	X(smbc_setOptionUseKerberos)                                       \
	X(smbc_setOptionUseCCache)                                         \
	X(smbc_setTimeout)                                                 \
	X(smbc_setPort)                                                    \
	X(smbc_getFunctionStat)                                            \
	X(smbc_getFunctionUnlink)                                          \
	X(smbc_getFunctionMkdir)                                           \
	X(smbc_getFunctionRename)                                          \
	X(smbc_getFunctionOpen)                                            \
	X(smbc_getFunctionWrite)                                           \
	X(smbc_getFunctionClose)                                           \
	X(smbc_getFunctionFstat)                                           \
	X(smbc_getFunctionRead)                                            \
	X(smbc_getFunctionOpendir)                                         \
	X(smbc_getFunctionReaddirPlus2)                                    \
	X(smbc_getFunctionClosedir)                                        \
	X(smbc_getFunctionUtimes)

static struct {
#define X(name) __typeof__(name) *name;
	SMB_FUNCS(X)
#undef X
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;

static void load(void)
{
	void *h = dlopen(SMB_LIB, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return;
#define X(name)                                                            \
	if (!(*(void **)&fn.name = dlsym(h, #name)))                       \
		return;
	SMB_FUNCS(X)
#undef X
	loaded = 1;
}

/* Only smbc_new_context() can be the first call: every other one takes
 * a context, which only exists once the library is loaded. */
SMBCCTX *smbc_new_context(void)
{
	pthread_once(&once, load);
	if (!loaded) {
		errno = ELIBACC;
		return NULL;
	}
	return fn.smbc_new_context();
}

int smbc_free_context(SMBCCTX *c, int shutdown_ctx)
{
	return fn.smbc_free_context(c, shutdown_ctx);
}

SMBCCTX *smbc_init_context(SMBCCTX *c)
{
	return fn.smbc_init_context(c);
}

void smbc_setDebug(SMBCCTX *c, int debug)
{
	fn.smbc_setDebug(c, debug);
}

void smbc_setOptionUserData(SMBCCTX *c, void *user_data)
{
	fn.smbc_setOptionUserData(c, user_data);
}

void *smbc_getOptionUserData(SMBCCTX *c)
{
	return fn.smbc_getOptionUserData(c);
}

void smbc_setFunctionAuthDataWithContext(SMBCCTX *c,
					 smbc_get_auth_data_with_context_fn f)
{
	fn.smbc_setFunctionAuthDataWithContext(c, f);
}

void smbc_setOptionNoAutoAnonymousLogin(SMBCCTX *c, smbc_bool b)
{
	fn.smbc_setOptionNoAutoAnonymousLogin(c, b);
}

void smbc_setOptionUseKerberos(SMBCCTX *c, smbc_bool b)
{
	fn.smbc_setOptionUseKerberos(c, b);
}

void smbc_setOptionUseCCache(SMBCCTX *c, smbc_bool b)
{
	fn.smbc_setOptionUseCCache(c, b);
}

void smbc_setTimeout(SMBCCTX *c, int timeout)
{
	fn.smbc_setTimeout(c, timeout);
}

void smbc_setPort(SMBCCTX *c, uint16_t port)
{
	fn.smbc_setPort(c, port);
}

#define GETTER(name, type)                                                 \
	type name(SMBCCTX *c)                                              \
	{                                                                  \
		return fn.name(c);                                         \
	}
GETTER(smbc_getFunctionStat, smbc_stat_fn)
GETTER(smbc_getFunctionUnlink, smbc_unlink_fn)
GETTER(smbc_getFunctionMkdir, smbc_mkdir_fn)
GETTER(smbc_getFunctionRename, smbc_rename_fn)
GETTER(smbc_getFunctionOpen, smbc_open_fn)
GETTER(smbc_getFunctionWrite, smbc_write_fn)
GETTER(smbc_getFunctionClose, smbc_close_fn)
GETTER(smbc_getFunctionFstat, smbc_fstat_fn)
GETTER(smbc_getFunctionRead, smbc_read_fn)
GETTER(smbc_getFunctionOpendir, smbc_opendir_fn)
GETTER(smbc_getFunctionReaddirPlus2, smbc_readdirplus2_fn)
GETTER(smbc_getFunctionClosedir, smbc_closedir_fn)
GETTER(smbc_getFunctionUtimes, smbc_utimes_fn)
#undef GETTER
