/* Two halves of one job on two threads (include/ltv/halves.h). */
#include <pthread.h>

#include "ltv/halves.h"

struct half_call {
	void (*fn)(void *);
	void *arg;
};

static void *half_main(void *arg)
{
	const struct half_call *c = arg;

	c->fn(c->arg);
	return NULL;
}

void halves_run(void (*fn)(void *), void *a, void *b, int threads)
{
	struct half_call call = { fn, b };
	pthread_t t;
	const int started = threads >= 2 && pthread_create(&t, NULL, half_main, &call) == 0;

	fn(a);
	if (started)
		pthread_join(t, NULL);
	else
		fn(b);
}
