/* test_workq.c - the worker queue: every pushed item is handled exactly
 * once across several threads, in order with one thread; a handler's error
 * stops the queue, and ferry_workq_finish returns it with its message. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define MANY 100000
#define THREADS 4

struct item {
	uint32_t index;
	uint32_t check; /* ~index: the whole item is copied, not just a word */
};

struct counts {
	atomic_uint seen[MANY];
	atomic_uint calls;
	atomic_uint bad_worker, bad_item;
	uint32_t fail_at, fail_at2;
	uint32_t order_next; /* single-thread order check */
	int ordered;
	atomic_uint out_of_order;
};

static int handle(void *p, int worker, void *arg)
{
	struct counts *c = arg;
	struct item *it = p;

	atomic_fetch_add(&c->calls, 1);
	if (worker < 0 || worker >= THREADS)
		atomic_fetch_add(&c->bad_worker, 1);
	if (it->check != ~it->index || it->index >= MANY) {
		atomic_fetch_add(&c->bad_item, 1);
		return 0;
	}
	if (c->ordered && it->index != c->order_next++)
		atomic_fetch_add(&c->out_of_order, 1);
	atomic_fetch_add(&c->seen[it->index], 1);
	if (it->index == c->fail_at || it->index == c->fail_at2)
		return ferry_error(FERRY_E_IO, "block %u: disk on fire",
				   it->index);
	return 0;
}

static struct counts *counts_new(void)
{
	struct counts *c = calloc(1, sizeof(*c));

	if (!c)
		exit(1);
	c->fail_at = c->fail_at2 = UINT32_MAX;
	return c;
}

static void test_all_once(uint32_t n, int threads, size_t capacity,
			  int ordered)
{
	struct counts *c = counts_new();
	struct ferry_workq *q = NULL;
	size_t twice = 0, never = 0;
	int pushed_bad = 0;

	c->ordered = ordered;
	CHECK(ferry_workq_new(threads, sizeof(struct item), capacity, handle, c,
			      &q) == 0);
	if (!q)
		exit(1);
	for (uint32_t i = 0; i < n; i++) {
		struct item it = { i, ~i };

		if (ferry_workq_push(q, &it) != 0)
			pushed_bad++;
	}
	CHECK(pushed_bad == 0);
	CHECK(ferry_workq_finish(q) == 0);
	for (size_t i = 0; i < n; i++) {
		unsigned k = atomic_load(&c->seen[i]);

		never += k == 0;
		twice += k > 1;
	}
	CHECK(never == 0);
	CHECK(twice == 0);
	CHECK(atomic_load(&c->calls) == n);
	CHECK(atomic_load(&c->bad_worker) == 0);
	CHECK(atomic_load(&c->bad_item) == 0);
	if (ordered)
		CHECK(atomic_load(&c->out_of_order) == 0);
	free(c);
}

/* A handler fails at item FAIL_AT: pushes start failing with that error,
 * the rest of the queue is drained unhandled, and finish returns the error
 * with the handler's message in the calling thread. */
static void test_error(int threads, uint32_t fail_at, uint32_t fail_at2)
{
	struct counts *c = counts_new();
	struct ferry_workq *q = NULL;
	uint32_t i, stopped_at = UINT32_MAX;
	char want[64];
	int e = 0;

	c->fail_at = fail_at;
	c->fail_at2 = fail_at2;
	CHECK(ferry_workq_new(threads, sizeof(struct item), 16, handle, c, &q) ==
	      0);
	if (!q)
		exit(1);
	for (i = 0; i < MANY; i++) {
		struct item it = { i, ~i };

		if ((e = ferry_workq_push(q, &it)) != 0) {
			stopped_at = i;
			break;
		}
	}
	CHECK(e == FERRY_E_IO);            /* push reports the latched error */
	CHECK(stopped_at < MANY);          /* ... and the producer stopped */
	CHECK(stopped_at > fail_at);
	/* The main thread's own last error is replaced by the handler's. */
	ferry_error(FERRY_E_INVAL, "something else");
	CHECK(ferry_workq_finish(q) == FERRY_E_IO);
	snprintf(want, sizeof(want), "block %u: disk on fire", fail_at);
	CHECK(strcmp(ferry_last_error(), want) == 0);
	/* Items after the failure are not all handled: the queue stopped. */
	CHECK(atomic_load(&c->calls) <= stopped_at);
	CHECK(atomic_load(&c->calls) < MANY);
	CHECK(atomic_load(&c->seen[fail_at]) == 1);
	if (threads == 1) {
		/* In order, nothing after the failing item runs. */
		CHECK(atomic_load(&c->calls) == fail_at + 1);
		CHECK(atomic_load(&c->seen[fail_at2]) == 0);
	}
	free(c);
}

static void test_edges(void)
{
	struct counts *c = counts_new();
	struct ferry_workq *q = NULL;

	/* An empty queue finishes cleanly. */
	CHECK(ferry_workq_new(THREADS, sizeof(struct item), 8, handle, c, &q) ==
	      0);
	CHECK(q && ferry_workq_finish(q) == 0);
	CHECK(atomic_load(&c->calls) == 0);
	/* A queue of one slot still moves everything. */
	free(c);
	test_all_once(MANY / 20, THREADS, 1, 0);
	/* No threads at all is an error, not a hang. */
	c = counts_new();
	q = NULL;
	CHECK(ferry_workq_new(0, sizeof(struct item), 8, handle, c, &q) != 0);
	free(c);
}

int main(void)
{
	test_all_once(MANY, THREADS, 64, 0);
	test_all_once(MANY, 1, 64, 1);
	test_error(THREADS, 1000, UINT32_MAX);
	test_error(THREADS, 0, UINT32_MAX);
	test_error(1, 1000, 1001);
	test_edges();
	return unit_done();
}
