/* fuzz_repo_config.c - libFuzzer target for a repository's config file
 * (REPO/config: repo.c's parser, the key lookups backends and features
 * make, repo_key.c's key lines), as a damaged or hostile share or bucket
 * would hold it.  The input is written as the config of a local
 * repository in a temp dir and opened with ferry_repo_open.  Whatever the
 * bytes, the open succeeds or fails with a message; a repository that
 * opens has a block size, codec, level and id ferry itself could have
 * written, and the key lines it would send a mover parse again on the
 * other side when they parsed here. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void setup(void)
{
	char sub[96];

	snprintf(dir, sizeof(dir), "/tmp/fuzz-repo-config-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(sub, sizeof(sub), "%s/chunks", dir);
	if (mkdir(sub, 0700))
		abort();
	snprintf(sub, sizeof(sub), "%s/points", dir);
	if (mkdir(sub, 0700))
		abort();
}

static int hex32(const char *s)
{
	for (int i = 0; i < 32; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[32] == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {
		"format", "version", "id", "block_size", "compression", "level",
		"features", "immutable_days", "object_lock_days", "encryption", "kdf", "key", "",
	};
	struct ferry_repo *r = NULL;
	char path[96], buf[4200];
	size_t len;
	int fd, e;

	if (!dir[0])
		setup();
	snprintf(path, sizeof(path), "%s/config", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	e = ferry_repo_open(dir, &r);
	if (e) {
		if (r || !ferry_last_error()[0])
			abort();
		return 0;
	}
	if (r->format_version != FERRY_FORMAT_VERSION ||
	    r->block_size < FERRY_BLOCK_MIN || r->block_size > FERRY_BLOCK_MAX ||
	    (r->block_size & (r->block_size - 1)) ||
	    !ferry_codec_name(r->codec) || !hex32(r->repo_id) ||
	    r->level < 0 || r->level > 22)
		abort();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char v[64];
		const char *got = ferry_repo_config(r, keys[i], v, sizeof(v));

		if (got && (got != v || strlen(v) >= sizeof(v)))
			abort();
	}
	(void)ferry_imm_days(r);
	if (ferry_repo_encrypted(r)) {
		char desc[256];
		const char *kdf = NULL;

		if (ferry_repo_need_key(r) != FERRY_E_KEY)
			abort();
		e = ferry_repo_kdf_describe(r, desc, sizeof(desc), &kdf);
		if (ferry_repo_key_text(r, buf, sizeof(buf), &len) == 0 && e == 0) {
			/* What a mover would send: it must parse there. */
			struct ferry_repo peer = { 0 };

			peer.path = (char *)"peer";
			if (len >= sizeof(buf) || ferry_repo_key_text_take(&peer, buf, len))
				abort();
			free(peer.config_text);
		}
	} else if (ferry_repo_key_text(r, buf, sizeof(buf), &len) || len) {
		abort();
	}
	ferry_repo_free(r);
	return 0;
}
