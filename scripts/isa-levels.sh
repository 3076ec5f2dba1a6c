#!/bin/sh
# The x86-64 levels this CPU runs, as ROUTESIM_ISA names them (v4 v3
# baseline), from the flags in /proc/cpuinfo (lzcnt, which v3 also needs,
# is not always listed); nothing off x86-64 Linux.
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) || exit 0
has() { for f in "$@"; do case " ${flags#*:} " in *" $f "*) ;; *) return 1 ;; esac; done; }
has avx512f avx512bw avx512cd avx512dq avx512vl && printf 'v4 '
has avx avx2 bmi1 bmi2 f16c fma movbe && printf 'v3 '
has sse2 && printf 'baseline'
echo
