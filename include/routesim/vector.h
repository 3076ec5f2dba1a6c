/* Hot kernels are plain loops the compiler vectorizes. RS_VECTOR_CLONES
 * builds such a function for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and
 * the baseline, and picks one at load time. Every clone gives the same bits:
 * reductions run over a fixed number of lanes, and fused multiply-adds are
 * written as fmaf(), which is correctly rounded in hardware and in libm. */
#ifndef ROUTESIM_VECTOR_H
#define ROUTESIM_VECTOR_H

/* RS_FORCE_ISA (make ROUTESIM_ISA=v4|v3|baseline) builds only that level's
 * clone of every kernel, so one machine can run and compare each clone. */
#if defined(RS_FORCE_ISA) && defined(__x86_64__) && defined(__GNUC__)
#if RS_FORCE_ISA == 4
#define RS_VECTOR_CLONES __attribute__((target("arch=x86-64-v4")))
#elif RS_FORCE_ISA == 3
#define RS_VECTOR_CLONES __attribute__((target("arch=x86-64-v3")))
#else
#define RS_VECTOR_CLONES
#endif
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define RS_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RS_VECTOR_CLONES
#endif

/* Lanes of the fixed-order partial sums (16 floats = one 512-bit vector). */
#define RS_LANES 16

/* Fully unrolled lane loops (up to 32 lanes) keep their accumulators in
 * registers where a vector holds fewer lanes than the loop (AVX2: 8 of
 * 16); the compiler then vectorises the unrolled statements. */
#if defined(__clang__)
#define RS_UNROLL_LANES _Pragma("unroll 32")
#elif defined(__GNUC__)
#define RS_UNROLL_LANES _Pragma("GCC unroll 32")
#else
#define RS_UNROLL_LANES
#endif

#endif
