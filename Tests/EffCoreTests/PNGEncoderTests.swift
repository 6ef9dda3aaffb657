import Foundation
import Testing
@testable import EffCore

@Suite struct PNGEncoderTests {
    @Test func checksumsMatchPublishedCheckValues() {
        #expect(Checksum.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(Checksum.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(Checksum.crc32([UInt8]()) == 0)
        #expect(Checksum.adler32([UInt8]()) == 1)
    }

    /// Parses chunks, checks every CRC, inflates the stored blocks and compares scanlines.
    private func decode(_ png: [UInt8]) throws -> (width: Int, height: Int, raw: [UInt8]) {
        #expect(Array(png[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func be(_ i: Int) -> Int { Int(png[i]) << 24 | Int(png[i + 1]) << 16 | Int(png[i + 2]) << 8 | Int(png[i + 3]) }
        var i = 8, width = 0, height = 0
        var idat = [UInt8]()
        var types: [String] = []
        while i < png.count {
            let n = be(i)
            let type = String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self)
            let body = Array(png[(i + 8)..<(i + 8 + n)])
            #expect(UInt32(be(i + 8 + n)) == Checksum.crc32(Array(png[(i + 4)..<(i + 8 + n)])), "CRC of \(type)")
            if type == "IHDR" { width = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3]); height = Int(body[7]); #expect(Array(body[8...]) == [8, 2, 0, 0, 0]) }
            if type == "IDAT" { idat += body }
            types.append(type)
            i += 12 + n
        }
        #expect(types == ["IHDR", "IDAT", "IEND"])
        #expect((Int(idat[0]) << 8 | Int(idat[1])) % 31 == 0)
        var raw = [UInt8](), p = 2
        while true {
            let final = idat[p] & 1
            #expect(idat[p] >> 1 == 0, "stored block type")
            let len = Int(idat[p + 1]) | Int(idat[p + 2]) << 8
            let nlen = Int(idat[p + 3]) | Int(idat[p + 4]) << 8
            #expect(len ^ nlen == 0xFFFF)
            raw += idat[(p + 5)..<(p + 5 + len)]
            p += 5 + len
            if final == 1 { break }
        }
        let adler = UInt32(idat[p]) << 24 | UInt32(idat[p + 1]) << 16 | UInt32(idat[p + 2]) << 8 | UInt32(idat[p + 3])
        #expect(adler == Checksum.adler32(raw))
        #expect(p + 4 == idat.count)
        return (width, height, raw)
    }

    @Test func encodesAValidPNGWhoseScanlinesHoldThePixels() throws {
        let img = RGBImage(width: 3, height: 2, pixels: Array(0..<18))
        let (w, h, raw) = try decode(PNGEncoder.encode(img))
        #expect(w == 3 && h == 2)
        #expect(raw == [0] + Array(0..<9) + [0] + Array(9..<18))
    }

    @Test func splitsLargeImagesIntoSeveralStoredBlocks() throws {
        let w = 200, h = 150  // 90,150 bytes of scanlines > one 65,535-byte block
        let img = RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let (_, _, raw) = try decode(PNGEncoder.encode(img))
        #expect(raw.count == h * (1 + w * 3))
        #expect(Array(raw[(1 + w * 3)..<(2 + w * 3 + 5)]) == [0] + Array(img.pixels[(w * 3)..<(w * 3 + 5)]))
    }

    @Test func planarFloatsMapToBytesWithClamping() {
        let img = RGBImage(planar: [-1, 1, 0, 2, -3, 0.5], width: 2, height: 1)
        // plane 0 = R: [-1, 1]; plane 1 = G: [0, 2]; plane 2 = B: [-3, 0.5]
        #expect(img.pixels == [0, 128, 0, 255, 255, 191])
    }
}
