/* fuzz_jobspec.c - libFuzzer target for the REST API's request parser:
 * a body goes through srv_json_parse and srv_job_from_json (the job
 * endpoint's checks, cron included) and the proxy endpoint's key check;
 * whatever is accepted must survive a round trip through the canonical
 * JSON unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/server/cron.c"
#include "../src/server/jobspec.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const proxy_keys[] = { "name", "address", "max_tasks", NULL };
	char err[1024];
	struct json_object *o, *back, *o2;
	static struct srv_job j, j2;
	const char *s;

	err[0] = 0;
	o = srv_json_parse((const char *)data, size, err, sizeof(err));
	if (!o) {
		if (!err[0])
			abort();
		return 0;
	}
	srv_json_check_keys(o, proxy_keys, err, sizeof(err));
	if (srv_job_from_json(o, &j, err, sizeof(err)) == 0) {
		back = srv_job_to_json(&j);
		s = json_object_to_json_string_ext(back, JSON_C_TO_STRING_PLAIN);
		o2 = srv_json_parse(s, strlen(s), err, sizeof(err));
		if (!o2 || srv_job_from_json(o2, &j2, err, sizeof(err)) ||
		    memcmp(&j, &j2, sizeof(j)))
			abort();
		json_object_put(o2);
		json_object_put(back);
	}
	json_object_put(o);
	return 0;
}
