/* A tiny test harness: CHECK records a failure with its line and goes on;
 * check_summary prints "N passed, N failed" and gives the exit status. */
#ifndef CRM_CHECK_H
#define CRM_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (cond) {                                                          \
			check_passed++;                                              \
		} else {                                                             \
			check_failed++;                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
		}                                                                    \
	} while (0)

#define CHECK_STR(a, b)                                                              \
	do {                                                                         \
		const char *a_ = (a), *b_ = (b);                                     \
		if (a_ && b_ && strcmp(a_, b_) == 0) {                               \
			check_passed++;                                              \
		} else {                                                             \
			check_failed++;                                              \
			fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, \
				__LINE__, b_ ? b_ : "(null)", a_ ? a_ : "(null)");    \
		}                                                                    \
	} while (0)

static inline int check_summary(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
