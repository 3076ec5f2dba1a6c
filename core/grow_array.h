/* Growing an array by doubling, for readers that do not know their sizes
 * in advance. */
#ifndef ROUTESIM_GROW_ARRAY_H
#define ROUTESIM_GROW_ARRAY_H

#include <stddef.h>
#include <stdint.h>

/* Grows the array that array_ptr points to (any T **, copied by bytes so
 * that it may have any object pointer type) to hold need elements of elem
 * bytes, doubling from first; *cap is its capacity. 0, or -1 when out of
 * memory (the array is then unchanged). */
int rs_grow_array(void *array_ptr, int64_t *cap, int64_t need, size_t elem, int64_t first);

#endif
