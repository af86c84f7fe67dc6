/* test_immutable.c - the hardened repository's small parts: the test
 * clock (FERRY_NOW), immutable_days from the config, the attribute on a
 * file of this directory's file system (when this process may set it),
 * and the expiry time shown to the operator. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

#define S 1000000000ull

static uint64_t now_with(const char *v)
{
	if (v)
		setenv("FERRY_NOW", v, 1);
	else
		unsetenv("FERRY_NOW");
	return ferry_imm_now_ns();
}

static int days_of(const char *config)
{
	struct ferry_repo r;

	memset(&r, 0, sizeof(r));
	r.config_text = (char *)config;
	return ferry_imm_days(&r);
}

int main(void)
{
	uint64_t real = ferry_now_ns(), t;
	char buf[64];

	/* The clock: unset is now; "+N", "+Nd", "-N" shift; "N" sets. */
	t = now_with(NULL);
	CHECK(t >= real && t - real < 5 * S);
	t = now_with("+3d");
	CHECK(t >= real + 3 * 86400 * S && t - (real + 3 * 86400 * S) < 5 * S);
	t = now_with("+60");
	CHECK(t >= real + 60 * S && t - (real + 60 * S) < 5 * S);
	t = now_with("-1d");
	CHECK(t + 86400 * S >= real && t + 86400 * S - real < 5 * S);
	CHECK(now_with("1700000000") == 1700000000ull * S);
	CHECK(now_with("2d") == 2ull * 86400 * S);
	/* Not a number: the real clock. */
	t = now_with("soon");
	CHECK(t >= real && t - real < 5 * S);
	t = now_with("+3x");
	CHECK(t >= real && t - real < 5 * S);
	now_with(NULL);

	/* immutable_days: 1..36500, else not hardened. */
	CHECK(days_of("features = immutable\nimmutable_days = 14\n") == 14);
	CHECK(days_of("immutable_days=1") == 1);
	CHECK(days_of("immutable_days = 36500\n") == 36500);
	CHECK(days_of("immutable_days = 36501\n") == 0);
	CHECK(days_of("immutable_days = 0\n") == 0);
	CHECK(days_of("immutable_days = -3\n") == 0);
	CHECK(days_of("level = 2\n") == 0);
	CHECK(days_of(NULL) == 0);

	/* The operator's time. */
	ferry_imm_time(1700000000ull * S, buf, sizeof(buf));
	CHECK(!strcmp(buf, "2023-11-14 22:13:20 UTC"));
	ferry_imm_time(UINT64_MAX, buf, sizeof(buf));
	CHECK(strstr(buf, "never") != NULL);

	/* The attribute, where this process may set it (root on ext4 and
	 * the like); otherwise the probe must say why. */
	{
		char dir[] = "/tmp/ferry-unit-imm.XXXXXX";
		int fd, e;

		CHECK(mkdtemp(dir) != NULL);
		e = ferry_imm_probe(dir);
		if (e == 0) {
			CHECK(chdir(dir) == 0);
			fd = open("f", O_RDWR | O_CREAT, 0600);
			CHECK(fd >= 0);
			CHECK(ferry_imm_is_at(AT_FDCWD, "f") == 0);
			CHECK(ferry_imm_fd(fd, 1) == 0);
			CHECK(ferry_imm_is_at(AT_FDCWD, "f") == 1);
			CHECK(unlink("f") < 0);
			CHECK(ferry_imm_fd(fd, 1) == 0); /* already set: no-op */
			CHECK(ferry_imm_at(AT_FDCWD, "f", 0) == 0);
			CHECK(ferry_imm_is_at(AT_FDCWD, "f") == 0);
			close(fd);
			CHECK(unlink("f") == 0);
			CHECK(ferry_imm_is_at(AT_FDCWD, "f") < 0);
			CHECK(chdir("/") == 0);
		} else {
			CHECK(e == FERRY_E_INVAL);
			CHECK(strstr(ferry_last_error(), "immutable attribute") != NULL);
			printf("attribute not settable here: %s\n", ferry_last_error());
		}
		/* The probe leaves nothing behind. */
		CHECK(rmdir(dir) == 0);
		/* A path that does not exist yet: probed in its parent. */
		if (e == 0)
			CHECK(ferry_imm_probe("/tmp/ferry-unit-imm-does-not-exist/repo") == 0);
	}
	return unit_done();
}
