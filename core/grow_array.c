#include "core/grow_array.h"

#include <stdlib.h>
#include <string.h>

int rs_grow_array(void *array_ptr, int64_t *cap, int64_t need, size_t elem, int64_t first)
{
    if (need <= *cap)
        return 0;
    int64_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    void *array;
    memcpy(&array, array_ptr, sizeof array);
    void *grown = realloc(array, (size_t)n * elem);
    if (!grown)
        return -1;
    memcpy(array_ptr, &grown, sizeof grown);
    *cap = n;
    return 0;
}
