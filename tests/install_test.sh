#!/usr/bin/env bash
# `make install` installs everything a plugin needs: into a temporary
# prefix, then, with only that prefix's include/ on the path,
#   - the example plugin builds with its own Makefile and the installed
#     routesim loads it;
#   - the C code of docs/architecture.md's "Adding a router" compiles;
#   - a program links against the installed libroutesim.so and runs.
# Install reuses the build folder ($BUILD, default build): nothing is rebuilt.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
make=${MAKE:-make}
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cflags=(-std=c11 -O2 -Wall -Wextra -Werror -fPIC -I"$prefix/include")

$make -s --no-print-directory -C "$src" install PREFIX="$prefix" DESTDIR= BUILD="${BUILD:-build}" > /dev/null

# The example plugin, copied away from the source tree.
mkdir "$tmp/example"
cp "$src"/examples/plugin_router/temperature_topk.c "$src"/examples/plugin_router/Makefile "$tmp/example/"
$make -s --no-print-directory -C "$tmp/example" ROUTESIM_INCLUDE="$prefix/include" OUT="$tmp/example/tt.so" CC="$cc"
"$prefix/bin/routesim" routers --plugin "$tmp/example/tt.so" temperature_topk > "$tmp/listing"
grep -q '^temperature_topk' "$tmp/listing" || { echo "install: the installed routesim does not list the example plugin's router" >&2; exit 1; }

# The first C block of the section "## Adding a router".
awk '/^## / {in_section = ($0 == "## Adding a router")} in_section && /^```c$/ && !done {on = 1; next}
     on && /^```$/ {on = 0; done = 1} on' "$src/docs/architecture.md" > "$tmp/docs_router.c"
[ -s "$tmp/docs_router.c" ] || { echo "install: docs/architecture.md: no C block in \"## Adding a router\"" >&2; exit 1; }
(cd "$tmp" && $cc "${cflags[@]}" -shared -o docs_router.so docs_router.c) ||
    { echo "install: docs/architecture.md \"## Adding a router\": its code does not compile against the installed headers" >&2; exit 1; }

# The shared library alone: find a router through the public API.
printf '#include <string.h>\n#include "routesim/router.h"\nint main(void) { const rs_router_type *t = rs_router_find("topk"); return !(t && strcmp(t->name, "topk") == 0); }\n' > "$tmp/use_lib.c"
(cd "$tmp" && $cc -std=c11 -Wall -Wextra -Werror -I"$prefix/include" -o use_lib use_lib.c -L"$prefix/lib" -lroutesim -Wl,-rpath,"$prefix/lib")
"$tmp/use_lib" || { echo "install: a program linked against the installed libroutesim.so failed" >&2; exit 1; }

echo "install: the example plugin, the documented router and a program using libroutesim.so build against $prefix alone"
