#!/usr/bin/env bash
# The binary and the shared library export the public API and nothing else:
# every defined dynamic symbol is a function declared RS_API in
# include/routesim/ (or one the C runtime defines), and every such function
# is exported, so plugins can call it. The static library has no global
# without the rs_ prefix. A library that leaks a symbol makes the check fail.
#
#   tests/exports_test.sh BUILD/routesim BUILD/libroutesim.so BUILD/libroutesim.a
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# RS_API and the name on one line, as the Makefile's export list reads them.
sed -n 's/^RS_API [^(]*[ *]\([a-z_][a-z0-9_]*\)(.*/\1/p' "$src"/include/routesim/*.h | grep -v '^routesim_register$' |
    sort > "$tmp/api"
[ -s "$tmp/api" ] || { echo "exports: no RS_API function in $src/include/routesim" >&2; exit 1; }
runtime='^(_IO_stdin_used|_edata|_end|__bss_start|__data_start|data_start|_start|_init|_fini)$'

check_exports() { # file: 0 when it exports exactly the API
    local file=$1 ok=0
    nm -D --defined-only "$file" | awk '{print $NF}' | sed 's/@.*//' | sort -u > "$tmp/exported"
    local extra missing
    extra=$(grep -vxF -f "$tmp/api" "$tmp/exported" | grep -vE "$runtime" || true)
    missing=$(grep -vxF -f "$tmp/exported" "$tmp/api" || true)
    if [ -n "$extra" ]; then
        echo "exports: $file exports symbols outside the public API (mark public ones RS_API, make the rest static):" >&2
        echo "$extra" | sed 's/^/  /' >&2
        ok=1
    fi
    if [ -n "$missing" ]; then
        echo "exports: $file does not export these RS_API functions:" >&2
        echo "$missing" | sed 's/^/  /' >&2
        ok=1
    fi
    return $ok
}

failed=0
check_exports "$1" || failed=1
check_exports "$2" || failed=1
# OpenMP names critical sections .gomp_critical_user_NAME, and a file with
# target regions gets a hidden weak FILE.c.HASH (GCC's offload tables); not
# ours to prefix.
unprefixed=$(nm --defined-only "$3" | awk '$2 ~ /^[TDRBCVW]$/ {print $3}' | grep -v '^rs_' |
    grep -v '^\.gomp_critical_user_' | grep -vE '^[A-Za-z0-9_]+\.c\.[0-9a-f]{8}$' || true)
if [ -n "$unprefixed" ]; then
    echo "exports: $3 has globals without the rs_ prefix (make them static or prefix them):" >&2
    echo "$unprefixed" | sed 's/^/  /' >&2
    failed=1
fi

# The check catches a leak: a library with one unprefixed global fails it.
printf 'int leaked_global = 1;\nint rs_fail(void) { return leaked_global; }\n' > "$tmp/leak.c"
cc -shared -fPIC -o "$tmp/leak.so" "$tmp/leak.c"
if check_exports "$tmp/leak.so" 2> "$tmp/leak.out" || ! grep -q '^  leaked_global$' "$tmp/leak.out"; then
    echo "exports: a library exporting leaked_global passed the check" >&2
    failed=1
fi

[ "$failed" = 0 ] && echo "exports: $(wc -l < "$tmp/api") public functions, nothing else exported"
exit $failed
