/* RS_API marks the public functions of routesim. Everything else is built
 * with -fvisibility=hidden, so the binary (for plugins) and libroutesim.so
 * export these declarations and nothing more. */
#ifndef ROUTESIM_API_H
#define ROUTESIM_API_H

#if defined(__GNUC__) || defined(__clang__)
#define RS_API __attribute__((visibility("default")))
#else
#define RS_API
#endif

#endif
