// Intrinsic kernels behind EffCore's kernel surface. The Swift reference loops in EffCore
// are the oracle these are tested against.
#ifndef CEFFKERNELS_H
#define CEFFKERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Returns 1 when the running CPU supports AVX2, FMA and F16C (the kernels' baseline).
int eff_cpu_has_avx2_fma(void);

#endif
