/* Keys given twice in one JSON object. cJSON keeps both and lookups return
 * the first, so `{"k": 2, "k": 3}` would silently mean k = 2; configs and
 * JSON-lines logs refuse such objects instead. */
#ifndef ROUTESIM_JSON_KEYS_H
#define ROUTESIM_JSON_KEYS_H

#include <cJSON.h>
#include <stddef.h>

/* Looks through node and everything inside it. Returns 1 and writes the
 * path of a repeated key ("routers[0].params.k", "" for none) into path
 * when some object has a key twice; 0 when every key is unique. */
int rs_json_duplicate_key(const cJSON *node, char *path, size_t size);

#endif
