#define _GNU_SOURCE
#include "core/large_alloc.h"

#include <stdlib.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

enum { HUGE_PAGE = 2 << 20 };

void *rs_large_alloc(size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= HUGE_PAGE) {
        void *p = NULL;
        size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        if (posix_memalign(&p, HUGE_PAGE, rounded) != 0)
            return NULL;
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint: without huge pages it works as before */
        return p;
    }
#endif
    return malloc(bytes ? bytes : 1);
}
