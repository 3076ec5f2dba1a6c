#!/usr/bin/env bash
# Checks that every folder includes only from the folders it may use.
#
# The rules are the table between <!-- layers:begin --> and <!-- layers:end -->
# in docs/architecture.md: one row per folder, `folder/` | `used/`, `used/`...
# A file belongs to the longest folder of the table that holds it; it may
# include headers of its own folder, of the folders its row lists, and the
# public API (include/routesim/, listed like any other folder). Headers named
# *_internal.h are private: only files below their own directory include them
# (and tests/, which test them).
# Generated headers (version.h, suites.h in the build tree) and system headers
# (<...>) are not checked.
#
#   scripts/check-layers.sh [--root DIR]
#
# Prints one line per violation, `file:line: ...`, and exits 1 when any.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--root" ]; then
    root=${2:?--root needs a folder}
fi
cd "$root"
table=docs/architecture.md
[ -f "$table" ] || { echo "check-layers: $root/$table: not found" >&2; exit 2; }

rules=$(awk '/<!-- layers:begin -->/ {on = 1; next} /<!-- layers:end -->/ {on = 0} on' "$table" |
    awk -F'|' 'NF >= 4 && $2 ~ /`/ {
        folder = $2; gsub(/[` \/]+$/, "", folder); gsub(/^[ `]+/, "", folder); gsub(/\/$/, "", folder)
        used = $3; gsub(/[`]/, "", used); gsub(/\/[ ]*(,|$)/, ",", used); gsub(/[ ]/, "", used); gsub(/,+$/, "", used)
        if (used == "-" || used == "—") used = ""
        print folder "\t" used
    }')
[ -n "$rules" ] || { echo "check-layers: $table: no layer table between <!-- layers:begin --> and <!-- layers:end -->" >&2; exit 2; }

folders=$(printf '%s\n' "$rules" | cut -f1)
missing=0
for f in $folders; do
    [ -d "$f" ] || { echo "check-layers: $table: folder $f/ does not exist" >&2; missing=1; }
done
[ "$missing" = 0 ] || exit 2

# Every #include "..." of every source file below the table's folders:
# file, line, header.
includes=$(for f in $folders; do find "$f" -type f \( -name '*.c' -o -name '*.h' -o -name '*.def' \); done | sort -u |
    xargs grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' /dev/null 2>/dev/null |
    sed -E 's/^([^:]*):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1\t\2\t\3/' || true)

printf '%s\n' "$includes" | awk -F'\t' -v rules="$rules" '
    function unit_of(path,    best, f) {
        best = ""
        for (f in allowed)
            if ((index(path, f "/") == 1) && length(f) > length(best))
                best = f
        return best
    }
    function dir_of(path) { sub(/\/[^\/]*$/, "", path); return path }
    BEGIN {
        n = split(rules, rows, "\n")
        for (i = 1; i <= n; i++) {
            split(rows[i], cols, "\t")
            allowed[cols[1]] = "," cols[2] ","
        }
        bad = 0
    }
    NF == 3 {
        file = $1; line = $2; header = $3
        if (header == "version.h" || header == "suites.h")
            next
        # Headers are named from the repository root (-I.), the public ones
        # from include/, and a few from the including file'"'"'s folder.
        if (header ~ /^routesim\//)
            target = "include/" header
        else if ((getline probe < header) >= 0) {
            close(header); target = header
        } else {
            target = dir_of(file) "/" header
            if ((getline probe < target) < 0) {
                printf "%s:%s: includes \"%s\", which is not a file of the tree\n", file, line, header
                bad = 1; next
            }
            close(target)
        }
        from = unit_of(file); to = unit_of(target)
        if (to == "") {
            printf "%s:%s: includes %s, which no layer of docs/architecture.md holds\n", file, line, target
            bad = 1; next
        }
        if (target ~ /_internal\.h$/ && from != "tests" && index(dir_of(file) "/", dir_of(target) "/") != 1) {
            printf "%s:%s: includes %s, a private header of %s/\n", file, line, target, dir_of(target)
            bad = 1; next
        }
        if (from == to || index(allowed[from], "," to ",") > 0)
            next
        uses = allowed[from]; gsub(/^,|,$/, "", uses); gsub(/,/, "/, ", uses)
        printf "%s:%s: includes %s: %s/ may not use %s/ (it may use %s)\n", file, line, target, from, to,
               uses == "" ? "nothing else" : uses "/"
        bad = 1
    }
    END { exit bad }
'
