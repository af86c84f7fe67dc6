/*
 * smb_dl.c - libsmbclient, loaded when an smb:// repository is first used.
 *
 * libsmbclient pulls in about 110 Samba libraries: linked normally, they
 * cost about 100 ms of CPU at every start of every ferry command, although
 * only smb:// repositories need them (src/lib/common/dl.h: how).
 *
 * Only smbc_new_context() can meet a missing library: it then returns NULL
 * with errno ELIBACC, which store_smb.c reports like any context failure.
 * Every other function here is reached only with a context it returned,
 * so the library is loaded by then.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <libsmbclient.h>

#include "common/dl.h"
#include "store_smb.h"

static struct ferry_dl smb_lib = FERRY_DL_INIT("libsmbclient.so.0", "libsmbclient");

#define SMB_FN(RET, NAME, PARAMS, ARGS) FERRY_DL_FN(smb_lib, RET, NAME, PARAMS, ARGS)
#define SMB_VOID(NAME, PARAMS, ARGS) FERRY_DL_VOID(smb_lib, NAME, PARAMS, ARGS)

SMBCCTX *smbc_new_context(void)
{
	if (!ferry_dl_load(&smb_lib)) {
		errno = ELIBACC;
		return NULL;
	}
	FERRY_DL_LOOKUP(smb_lib, smbc_new_context, fn_);
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
