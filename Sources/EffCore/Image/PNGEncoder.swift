/// Writes 8-bit RGB PNG files (PNG spec, ISO/IEC 15948): IHDR, one IDAT, IEND.
///
/// The zlib stream (RFC 1950) holds DEFLATE (RFC 1951) *stored* blocks: no compression,
/// which keeps the encoder tiny and exact; our images are 32x32 to a few hundred pixels wide,
/// so size does not matter. Each scanline uses filter type 0 (None).
public enum PNGEncoder {
    /// The PNG file bytes for `image`.
    public static func encode(_ image: RGBImage) -> [UInt8] {
        var raw = [UInt8]()
        raw.reserveCapacity(image.height * (1 + image.width * 3))
        let stride = image.width * 3
        for y in 0..<image.height {
            raw.append(0)  // filter: None
            raw.append(contentsOf: image.pixels[(y * stride)..<((y + 1) * stride)])
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr = [UInt8]()
        ihdr += bigEndian(UInt32(image.width)) + bigEndian(UInt32(image.height))
        ihdr += [8, 2, 0, 0, 0]  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
        appendChunk(&out, "IHDR", ihdr)
        appendChunk(&out, "IDAT", zlibStored(raw))
        appendChunk(&out, "IEND", [])
        return out
    }

    /// A zlib stream of stored DEFLATE blocks (at most 65,535 bytes each) plus Adler-32.
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // CM=8, CINFO=7, FLEVEL=0; (0x7801 % 31 == 0)
        var i = 0
        repeat {
            let n = min(65_535, data.count - i)
            let final: UInt8 = i + n == data.count ? 1 : 0
            out.append(final)  // BFINAL, BTYPE=00 (stored), padded to the byte boundary
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out.append(contentsOf: data[i..<(i + n)])
            i += n
        } while i < data.count
        out += bigEndian(Checksum.adler32(data))
        return out
    }

    private static func appendChunk(_ out: inout [UInt8], _ type: String, _ body: [UInt8]) {
        let typeBytes = Array(type.utf8)
        out += bigEndian(UInt32(body.count))
        out += typeBytes
        out += body
        out += bigEndian(Checksum.crc32(typeBytes + body))
    }

    private static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}

/// The two checksums PNG needs: CRC-32 (ISO 3309, per chunk) and Adler-32 (RFC 1950, zlib).
public enum Checksum {
    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 with the reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF.
    public static func crc32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// Adler-32: two sums modulo 65521, B << 16 | A.
    public static func adler32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in bytes { a = (a + UInt32(x)) % 65_521; b = (b + a) % 65_521 }
        return b << 16 | a
    }
}
