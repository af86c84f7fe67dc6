/* fuzz_cron.c - libFuzzer target for the job schedule parser
 * (src/server/cron.c): any text is refused with a message or parsed into
 * sets whose next matching minute is after the given time and matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/server/cron.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[300], err[256];
	struct srv_cron c;
	time_t t0 = 1700000000, n;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	setenv("TZ", "UTC", 1);
	err[0] = 0;
	if (srv_cron_parse(text, &c, err, sizeof(err))) {
		if (!err[0])
			abort(); /* a refusal always says why */
		return 0;
	}
	if (!c.minute || !c.hour || !c.dom || !c.month || !c.dow)
		abort(); /* an accepted expression has values in every field */
	n = srv_cron_next(&c, t0);
	if (n) {
		struct tm tm;

		if (n <= t0 || n % 60)
			abort();
		gmtime_r(&n, &tm);
		if (!((c.minute >> tm.tm_min) & 1) || !((c.hour >> tm.tm_hour) & 1) ||
		    !((c.month >> (tm.tm_mon + 1)) & 1))
			abort();
	}
	return 0;
}
