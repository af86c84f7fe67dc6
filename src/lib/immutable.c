/* immutable.c - the hardened repository: the Linux immutable attribute
 * (FS_IOC_SETFLAGS with FS_IMMUTABLE_FL) on committed chunks, manifests
 * and expiry records, each restore point's expiry, and the test clock.
 * The store (store_local.c) sets the attribute; forget and gc consult the
 * expiry before they remove anything (docs/hardened-repository.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DAY_NS (86400ull * 1000000000ull)

uint64_t ferry_imm_now_ns(void)
{
	/* FERRY_NOW (tests only, docs/hardened-repository.md): "+SECONDS"
	 * shifts the clock, "SECONDS" sets it (unix time); a suffix d
	 * counts days. */
	const char *s = getenv("FERRY_NOW");
	uint64_t now = ferry_now_ns();
	char *end;
	long long v;

	if (!s || !*s)
		return now;
	v = strtoll(s, &end, 10);
	if (*end == 'd') {
		v *= 86400;
		end++;
	}
	if (*end || end == s)
		return now;
	if (*s == '+' || *s == '-')
		return (uint64_t)((long long)now + v * 1000000000ll);
	return (uint64_t)v * 1000000000ull;
}

int ferry_imm_days(const struct ferry_repo *r)
{
	char buf[32];
	long v;

	if (!ferry_repo_config(r, "immutable_days", buf, sizeof(buf)))
		return 0;
	v = strtol(buf, NULL, 10);
	return v > 0 && v <= FERRY_IMM_DAYS_MAX ? (int)v : 0;
}

int ferry_imm_fd(int fd, int on)
{
	int flags;

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		return -errno;
	if (!!(flags & FS_IMMUTABLE_FL) == !!on)
		return 0;
	if (on)
		flags |= FS_IMMUTABLE_FL;
	else
		flags &= ~FS_IMMUTABLE_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
		return -errno;
	return 0;
}

int ferry_imm_at(int dirfd, const char *name, int on)
{
	int fd = openat(dirfd, name,
			O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	int e;

	if (fd < 0)
		return -errno;
	e = ferry_imm_fd(fd, on);
	close(fd);
	return e;
}

int ferry_imm_is_at(int dirfd, const char *name)
{
	struct statx st;

	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &st) < 0)
		return -errno;
	if (st.stx_attributes_mask & STATX_ATTR_IMMUTABLE)
		return !!(st.stx_attributes & STATX_ATTR_IMMUTABLE);
	return -EOPNOTSUPP;
}

int ferry_imm_probe(const char *path)
{
	char dir[4096], probe[4200];
	struct stat st;
	int fd, e;

	/* The repository's directory, or the nearest one that exists above
	 * it (where init will create it). */
	snprintf(dir, sizeof(dir), "%s", path);
	while (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		char *slash = strrchr(dir, '/');

		if (!slash) {
			snprintf(dir, sizeof(dir), ".");
			break;
		}
		if (slash == dir)
			slash[1] = 0;
		else
			*slash = 0;
		if (!strcmp(dir, "/"))
			break;
	}
	snprintf(probe, sizeof(probe), "%s/.ferry-immutable-probe-%ld", dir,
		 (long)getpid());
	fd = open(probe, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "cannot test the immutable attribute in %s: %s",
				   dir, strerror(errno));
	e = ferry_imm_fd(fd, 1);
	if (e == 0)
		e = ferry_imm_fd(fd, 0);
	close(fd);
	unlink(probe);
	if (e == -EPERM || e == -EACCES)
		return ferry_error(FERRY_E_INVAL,
				   "--immutable-days: setting the immutable attribute in %s was refused (%s): it needs root or CAP_LINUX_IMMUTABLE",
				   dir, strerror(-e));
	if (e)
		return ferry_error(FERRY_E_INVAL,
				   "--immutable-days: the file system of %s does not support the immutable attribute (%s); put a hardened repository on ext4, xfs or btrfs",
				   dir, strerror(-e));
	return 0;
}

/* ---- expiry records ------------------------------------------------- */

int ferry_point_expiry(struct ferry_repo *r, const char *id,
		       uint64_t created_ns, uint64_t *until_ns)
{
	char text[128];
	size_t len = 0;
	int days = ferry_imm_days(r), e;

	*until_ns = 0;
	if (!days)
		return 0;
	/* Without a readable record (committed before it could be written,
	 * or damaged), the creation time gives the expiry; without that
	 * (a damaged manifest), the point never expires on its own. */
	*until_ns = created_ns ? created_ns + (uint64_t)days * DAY_NS : UINT64_MAX;
	if (!r->ops->record_get)
		return 0;
	e = r->ops->record_get(r, "expiry", id, text, sizeof(text) - 1, &len);
	if (e == FERRY_E_NOTFOUND)
		return 0;
	if (e)
		return e;
	text[len] = 0;
	if (!strncmp(text, "until_ns=", 9)) {
		char *end;
		unsigned long long v = strtoull(text + 9, &end, 10);

		if (end != text + 9 && (*end == '\n' || !*end))
			*until_ns = v;
	}
	return 0;
}

int ferry_point_protected(struct ferry_repo *r, const char *id,
			  uint64_t created_ns, uint64_t *until_ns)
{
	int e = ferry_point_expiry(r, id, created_ns, until_ns);

	if (e)
		return e;
	return *until_ns && *until_ns > ferry_imm_now_ns();
}

void ferry_imm_time(uint64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (ns == UINT64_MAX) {
		snprintf(buf, cap, "never (no expiry known)");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}
