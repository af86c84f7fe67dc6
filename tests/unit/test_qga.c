/* test_qga.c - the qemu-guest-agent reply parser: returns, errors, and
 * bytes that are no reply at all. */
#include <string.h>

#include "unit.h"
#include "vmsrc.h"

static int parse(const char *s, long long *v, char *val, size_t vlen)
{
	return ferry_qga_parse_reply(s, strlen(s), v, val, vlen);
}

int main(void)
{
	long long v = 0;
	char val[256];

	CHECK(parse("{\"return\": 3}", &v, NULL, 0) == 0 && v == 3);
	CHECK(parse(" { \"return\" : 1234567 } ", &v, NULL, 0) == 0 && v == 1234567);
	CHECK(parse("{\"return\": {}}", &v, val, sizeof(val)) == 0 && v == -1 &&
	      !strcmp(val, "{}"));
	CHECK(parse("{\"return\": {\"version\": \"7.2.22\", \"supported_commands\": "
		    "[{\"enabled\": true, \"name\": \"guest-ping\"}]}}",
		    NULL, val, sizeof(val)) == 0 && strstr(val, "7.2.22"));
	CHECK(parse("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
		    "\"Command guest-fsfreeze-freeze has been disabled\"}}",
		    &v, NULL, 0) == FERRY_E_SOURCE);
	CHECK(strstr(ferry_last_error(), "CommandNotFound: Command guest-fsfreeze-freeze"));
	CHECK(parse("{\"error\": {\"desc\": \"a \\\"quoted\\\" word\"}}", &v, NULL, 0) ==
	      FERRY_E_SOURCE);
	CHECK(parse("", &v, NULL, 0) == FERRY_E_CORRUPT);
	CHECK(parse("{\"return\": ", &v, NULL, 0) == FERRY_E_CORRUPT);
	CHECK(parse("{\"ret\": 1}", &v, NULL, 0) == FERRY_E_CORRUPT);
	CHECK(parse("[1,2,3]", &v, NULL, 0) == FERRY_E_CORRUPT);
	CHECK(parse("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], \"return\": 1}",
		    &v, NULL, 0) == FERRY_E_CORRUPT);
	CHECK(parse("{\"a\": \"\\", &v, NULL, 0) == FERRY_E_CORRUPT);
	return unit_done();
}
