/*
 * smb_dl.c - libsmbclient, loaded when an smb:// repository is first used.
 *
 * libsmbclient pulls in about 110 Samba libraries.  Linked normally, the
 * dynamic loader maps and relocates all of them at every start of every
 * ferry command (about 100 ms of CPU, most of ferry's start-up), although
 * only smb:// repositories need them.  So ferry does not link it: this file
 * defines the libsmbclient functions store_smb.c calls, with the header's
 * own prototypes, and each one forwards to the real function, found with
 * dlsym after one dlopen of the library.
 *
 * Only smbc_new_context() can meet a missing library: it then returns NULL
 * with errno ELIBACC, which store_smb.c reports like any context failure.
 * Every other function here is reached only with a context it returned,
 * so the library is loaded by then.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libsmbclient.h>

#include "store_smb.h"

#define SMB_SONAME "libsmbclient.so.0"

static pthread_once_t smb_once = PTHREAD_ONCE_INIT;
static void *smb_lib;

static void smb_load(void)
{
	smb_lib = dlopen(SMB_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!smb_lib)
		fprintf(stderr, "ferry: cannot load %s (install libsmbclient): %s\n",
			SMB_SONAME, dlerror());
}

/* The address of libsmbclient's NAME, or NULL (library or symbol missing). */
static void *smb_sym(const char *name)
{
	pthread_once(&smb_once, smb_load);
	return smb_lib ? dlsym(smb_lib, name) : NULL;
}

static int smb_dl_available(void)
{
	pthread_once(&smb_once, smb_load);
	return smb_lib != NULL;
}

/*
 * SMB_FN(RET, NAME, PARAMS, ARGS) defines NAME forwarding to the library's.
 * A symbol missing from a loaded library is a broken installation: abort
 * rather than call through NULL.
 */
#define SMB_LOOKUP(NAME, var)                                          \
	__typeof__(NAME) *var;                                               \
	do {                                                                 \
		static void *sym_;                                           \
		if (!__atomic_load_n(&sym_, __ATOMIC_ACQUIRE)) {             \
			void *p_ = smb_sym(#NAME);                           \
			if (!p_) {                                           \
				fprintf(stderr, "ferry: %s lacks %s\n",       \
					SMB_SONAME, #NAME);                   \
				abort();                                     \
			}                                                    \
			__atomic_store_n(&sym_, p_, __ATOMIC_RELEASE);       \
		}                                                            \
		void *q_ = __atomic_load_n(&sym_, __ATOMIC_ACQUIRE);         \
		memcpy(&var, &q_, sizeof(var));                              \
	} while (0)

#define SMB_FN(RET, NAME, PARAMS, ARGS)                                      \
	RET NAME PARAMS                                                      \
	{                                                                    \
		SMB_LOOKUP(NAME, fn_);                        \
		return fn_ ARGS;                                             \
	}

#define SMB_VOID(NAME, PARAMS, ARGS)                                         \
	void NAME PARAMS                                                     \
	{                                                                    \
		SMB_LOOKUP(NAME, fn_);                       \
		fn_ ARGS;                                                    \
	}

SMBCCTX *smbc_new_context(void)
{
	if (!smb_dl_available()) {
		errno = ELIBACC;
		return NULL;
	}
	SMB_LOOKUP(smbc_new_context, fn_);
	return fn_();
}

SMB_FN(SMBCCTX *, smbc_init_context, (SMBCCTX *c), (c))
SMB_FN(int, smbc_free_context, (SMBCCTX *c, int shutdown_ctx), (c, shutdown_ctx))
SMB_VOID(smbc_setDebug, (SMBCCTX *c, int debug), (c, debug))
SMB_VOID(smbc_setFunctionAuthDataWithContext,
	 (SMBCCTX *c, smbc_get_auth_data_with_context_fn f), (c, f))
SMB_VOID(smbc_setOptionNoAutoAnonymousLogin, (SMBCCTX *c, smbc_bool b), (c, b))
SMB_VOID(smbc_setOptionUseCCache, (SMBCCTX *c, smbc_bool b), (c, b))
SMB_VOID(smbc_setOptionUseKerberos, (SMBCCTX *c, smbc_bool b), (c, b))
SMB_VOID(smbc_setOptionUserData, (SMBCCTX *c, void *data), (c, data))
SMB_FN(void *, smbc_getOptionUserData, (SMBCCTX *c), (c))
SMB_VOID(smbc_setPort, (SMBCCTX *c, uint16_t port), (c, port))
SMB_VOID(smbc_setTimeout, (SMBCCTX *c, int timeout), (c, timeout))
SMB_FN(smbc_close_fn, smbc_getFunctionClose, (SMBCCTX *c), (c))
SMB_FN(smbc_closedir_fn, smbc_getFunctionClosedir, (SMBCCTX *c), (c))
SMB_FN(smbc_fstat_fn, smbc_getFunctionFstat, (SMBCCTX *c), (c))
SMB_FN(smbc_mkdir_fn, smbc_getFunctionMkdir, (SMBCCTX *c), (c))
SMB_FN(smbc_open_fn, smbc_getFunctionOpen, (SMBCCTX *c), (c))
SMB_FN(smbc_opendir_fn, smbc_getFunctionOpendir, (SMBCCTX *c), (c))
SMB_FN(smbc_read_fn, smbc_getFunctionRead, (SMBCCTX *c), (c))
SMB_FN(smbc_readdirplus_fn, smbc_getFunctionReaddirPlus, (SMBCCTX *c), (c))
SMB_FN(smbc_readdirplus2_fn, smbc_getFunctionReaddirPlus2, (SMBCCTX *c), (c))
SMB_FN(smbc_rename_fn, smbc_getFunctionRename, (SMBCCTX *c), (c))
SMB_FN(smbc_stat_fn, smbc_getFunctionStat, (SMBCCTX *c), (c))
SMB_FN(smbc_unlink_fn, smbc_getFunctionUnlink, (SMBCCTX *c), (c))
SMB_FN(smbc_utimes_fn, smbc_getFunctionUtimes, (SMBCCTX *c), (c))
SMB_FN(smbc_write_fn, smbc_getFunctionWrite, (SMBCCTX *c), (c))
