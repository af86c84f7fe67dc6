/* unit.h - the tiny harness of ferry's C unit tests: CHECK records a
 * failure with its line and goes on; unit_done() reports and sets the exit
 * status (0 only when every check held). */
#ifndef FERRY_UNIT_H
#define FERRY_UNIT_H

#include <stdio.h>
#include <stdlib.h>

static int unit_checks, unit_failures;

#define CHECK(cond)                                                          \
	do {                                                                 \
		unit_checks++;                                               \
		if (!(cond)) {                                               \
			unit_failures++;                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
		}                                                            \
	} while (0)

static inline int unit_done(void)
{
	printf("%d checks, %d failed\n", unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}

#endif
