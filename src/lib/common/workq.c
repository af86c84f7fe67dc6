/* workq.c - a fixed pool of threads fed by one bounded queue: the engine
 * under backup, restore and verify.  Memory is the queue's capacity, never
 * the size of the disk. */
#include <stdlib.h>

#include "../internal.h"

atomic_int ferry_cancelled;

void ferry_cancel(void)
{
	atomic_store(&ferry_cancelled, 1);
}

struct ferry_workq {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	uint8_t *items;
	size_t item_size, cap, head, count;
	int closing, err, nthreads;
	char errmsg[1024];
	ferry_work_fn fn;
	void *arg;
	pthread_t *threads;
	struct worker_arg {
		struct ferry_workq *q;
		int index;
	} *wargs;
};

static void *worker_main(void *p)
{
	struct worker_arg *wa = p;
	struct ferry_workq *q = wa->q;
	uint8_t *item = malloc(q->item_size);

	if (!item) {
		pthread_mutex_lock(&q->mu);
		if (!q->err) {
			q->err = ferry_error(FERRY_E_NOMEM,
					     "cannot allocate a work item");
			ferry_error_save(&q->err, q->errmsg, sizeof(q->errmsg));
		}
		pthread_cond_broadcast(&q->not_full);
		pthread_mutex_unlock(&q->mu);
		/* Other workers drain the queue; none left would hang push
		 * only if every worker failed, and then err is latched. */
		return NULL;
	}
	for (;;) {
		int r;

		pthread_mutex_lock(&q->mu);
		while (!q->count && !q->closing)
			pthread_cond_wait(&q->not_empty, &q->mu);
		if (!q->count) {
			pthread_mutex_unlock(&q->mu);
			break;
		}
		memcpy(item, q->items + q->head * q->item_size, q->item_size);
		q->head = (q->head + 1) % q->cap;
		q->count--;
		pthread_cond_signal(&q->not_full);
		r = q->err;
		pthread_mutex_unlock(&q->mu);
		if (r)
			continue; /* drain after an error */
		r = q->fn(item, wa->index, q->arg);
		if (r) {
			pthread_mutex_lock(&q->mu);
			if (!q->err) {
				q->err = r;
				ferry_error_save(&q->err, q->errmsg,
						 sizeof(q->errmsg));
			}
			pthread_mutex_unlock(&q->mu);
		}
	}
	free(item);
	return NULL;
}

int ferry_workq_new(int threads, size_t item_size, size_t capacity,
		    ferry_work_fn fn, void *arg, struct ferry_workq **out)
{
	struct ferry_workq *q = calloc(1, sizeof(*q));

	if (!q)
		return FERRY_E_NOMEM;
	q->item_size = item_size;
	q->cap = capacity;
	q->fn = fn;
	q->arg = arg;
	q->items = malloc(item_size * capacity);
	q->threads = calloc((size_t)threads, sizeof(*q->threads));
	q->wargs = calloc((size_t)threads, sizeof(*q->wargs));
	if (!q->items || !q->threads || !q->wargs) {
		free(q->items);
		free(q->threads);
		free(q->wargs);
		free(q);
		return FERRY_E_NOMEM;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	for (int i = 0; i < threads; i++) {
		q->wargs[i].q = q;
		q->wargs[i].index = i;
		if (pthread_create(&q->threads[i], NULL, worker_main,
				   &q->wargs[i]) != 0)
			break;
		q->nthreads++;
	}
	if (!q->nthreads) {
		ferry_workq_finish(q);
		return ferry_error(FERRY_E_NOMEM, "cannot start worker threads");
	}
	*out = q;
	return 0;
}

int ferry_workq_push(struct ferry_workq *q, const void *item)
{
	int r;

	pthread_mutex_lock(&q->mu);
	while (q->count == q->cap && !q->err)
		pthread_cond_wait(&q->not_full, &q->mu);
	r = q->err;
	if (!r) {
		memcpy(q->items + ((q->head + q->count) % q->cap) * q->item_size,
		       item, q->item_size);
		q->count++;
		pthread_cond_signal(&q->not_empty);
	}
	pthread_mutex_unlock(&q->mu);
	return r;
}

int ferry_workq_finish(struct ferry_workq *q)
{
	int r;

	pthread_mutex_lock(&q->mu);
	q->closing = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	r = q->err;
	if (r)
		ferry_error_restore(r, q->errmsg);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->items);
	free(q->threads);
	free(q->wargs);
	free(q);
	return r;
}

int ferry_workq_run(int threads, const void *items, size_t item_size,
		    size_t n, ferry_work_fn fn, void *arg)
{
	struct ferry_workq *q;
	int e, qe;

	if (!n)
		return 0;
	if ((size_t)threads > n)
		threads = (int)n;
	if ((e = ferry_workq_new(threads, item_size, n, fn, arg, &q)) != 0)
		return e;
	for (size_t k = 0; k < n && e == 0; k++)
		e = ferry_workq_push(q, (const char *)items + k * item_size);
	qe = ferry_workq_finish(q);
	return qe ? qe : e;
}
