import Foundation

/// A seeded source of standard normal noise: xoshiro256** bits, Box–Muller pairs.
///
/// Reproducible across runs and machines for a given seed (the state is seeded by
/// SplitMix64, as the xoshiro authors recommend). Not cryptographic.
public struct GaussianNoise: Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spare: Float?

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// Next 64 random bits (xoshiro256**).
    public mutating func nextBits() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in (0, 1], 53 bits.
    public mutating func nextUniform() -> Double {
        Double((nextBits() >> 11) + 1) * 0x1p-53
    }

    /// One standard normal sample (Box–Muller; the second value of each pair is kept).
    public mutating func next() -> Float {
        if let v = spare { spare = nil; return v }
        let u1 = nextUniform(), u2 = nextUniform()
        let r = (-2 * log(u1)).squareRoot()
        spare = Float(r * sin(2 * Double.pi * u2))
        return Float(r * cos(2 * Double.pi * u2))
    }

    /// `count` standard normal samples.
    public mutating func fill(_ count: Int) -> [Float] {
        (0..<count).map { _ in next() }
    }
}
