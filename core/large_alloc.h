/* Buffers of many megabytes (a chunk's logits, its decisions): on Linux
 * they ask for transparent huge pages, so that first touching them takes a
 * page fault per 2 MiB instead of per 4 KiB (on virtual machines a fault
 * costs microseconds, and a grown chunk's 15-45 MB of rows were a third of
 * its reading time). Smaller ones are plain malloc. Free with free(). */
#ifndef ROUTESIM_LARGE_ALLOC_H
#define ROUTESIM_LARGE_ALLOC_H

#include <stddef.h>

void *rs_large_alloc(size_t bytes);

#endif
