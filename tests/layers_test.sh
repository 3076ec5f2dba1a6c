#!/usr/bin/env bash
# scripts/check-layers.sh on small trees built from the real rule table:
# the tree as it is passes; a router that includes a sim/ header, a folder
# that includes a sibling's private header, and a file outside every layer
# each fail with the file and line named.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
check="$src/scripts/check-layers.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# A tree with every folder of the table and one legal include chain.
make_tree() {
    rm -rf "$tmp/tree" && mkdir -p "$tmp/tree/docs"
    cp "$src/docs/architecture.md" "$tmp/tree/docs/"
    awk '/<!-- layers:begin -->/ {on = 1; next} /<!-- layers:end -->/ {on = 0} on' "$src/docs/architecture.md" |
        awk -F'|' 'NF >= 4 && $2 ~ /`/ {gsub(/[` ]/, "", $2); print $2}' |
        while read -r d; do mkdir -p "$tmp/tree/$d"; done
    printf '#include <stdio.h>\n' > "$tmp/tree/include/routesim/error.h"
    printf '#include "routesim/error.h"\n' > "$tmp/tree/core/read_file.h"
    printf '#include "core/read_file.h"\n#include "engine_internal.h"\n' > "$tmp/tree/sim/engine/engine.h"
    printf '\n' > "$tmp/tree/sim/engine/engine_internal.h"
    printf '#include "core/read_file.h"\n#include "routesim/error.h"\n' > "$tmp/tree/routers/topk.c"
}

expect() { # name, wanted exit code, text the output must contain ("" for none)
    local name=$1 want=$2 text=$3 out rc=0
    out=$("$check" --root "$tmp/tree" 2>&1) || rc=$?
    if [ "$rc" != "$want" ] || { [ -n "$text" ] && ! grep -qF -- "$text" <<<"$out"; }; then
        echo "FAIL $name: exit $rc (wanted $want), output: $out"
        failed=$((failed + 1))
    else
        echo "ok   $name"
    fi
}

make_tree
expect "legal tree passes" 0 ""

make_tree
printf '#include <stdlib.h>\n\n#include "sim/engine/engine.h"\n' >> "$tmp/tree/routers/topk.c"
expect "router including a sim/ header fails" 1 "routers/topk.c:5: includes sim/engine/engine.h: routers/ may not use sim/engine/"

make_tree
printf '#include "sim/engine/engine_internal.h"\n' > "$tmp/tree/sim/experiment/run.c"
expect "private header of a sibling fails" 1 "sim/experiment/run.c:1: includes sim/engine/engine_internal.h, a private header"

make_tree
printf '#include "core/nowhere.h"\n' > "$tmp/tree/core/a.c"
expect "missing header fails" 1 "core/a.c:1: includes \"core/nowhere.h\""

echo "== the repository itself"
if "$check"; then echo "ok   repository layers"; else echo "FAIL repository layers"; failed=$((failed + 1)); fi

[ "$failed" = 0 ] || { echo "layers: $failed failed"; exit 1; }
