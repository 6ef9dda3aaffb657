#include "CEffKernels.h"

int eff_cpu_has_avx2_fma(void) {
#if defined(__x86_64__)
    // F16C is CPUID leaf 1, ECX bit 29 (every AVX2 + FMA part has it, but a VM may mask it).
    unsigned int a = 0, b = 0, c = 0, d = 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && ((c >> 29) & 1) ? 1 : 0;
#else
    return 0;
#endif
}

int eff_cpu_has_avx_vnni(void) {
#if defined(__x86_64__)
    // CPUID leaf 7 subleaf 1, EAX bit 4: AVX-VNNI (VEX-encoded, 256-bit; no AVX-512 needed).
    unsigned int a = 0, b = 0, c = 0, d = 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(1));
    return eff_cpu_has_avx2_fma() && ((a >> 4) & 1) ? 1 : 0;
#else
    return 0;
#endif
}

int eff_cpu_has_avx512_vnni(void) {
#if defined(__x86_64__)
    // compiler-rt's checks include the OS saving the zmm state (XCR0).
    __builtin_cpu_init();
    return eff_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vnni") ? 1 : 0;
#else
    return 0;
#endif
}
