import CEffKernels

/// What the running processor offers the kernels. AVX2 + FMA + F16C is the baseline the
/// release build targets; AMX is deliberately never used (advertised on these VMs, faults).
public enum CPUFeatures {
    /// True when the intrinsic kernels of CEffKernels may run on this CPU.
    public static let hasAVX2FMA: Bool = eff_cpu_has_avx2_fma() != 0
}
