import Foundation
import Testing
@testable import EffCore

/// Builds a safetensors file from a raw header string and data bytes.
private func file(header: String, data: [UInt8]) -> Data {
    let h = Array(header.utf8)
    var out = [UInt8]()
    var n = UInt64(h.count)
    for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
    return Data(out + h + data)
}

private func f32Bytes(_ xs: [Float]) -> [UInt8] {
    xs.flatMap { v -> [UInt8] in let b = v.bitPattern; return [0, 8, 16, 24].map { UInt8((b >> $0) & 0xFF) } }
}

private func f16Bytes(_ xs: [Float]) -> [UInt8] {
    xs.flatMap { v -> [UInt8] in let h = HalfFloat.fromFloat(v); return [UInt8(h & 0xFF), UInt8(h >> 8)] }
}

@Suite struct SafeTensorsTests {
    @Test func readsF32AndF16TensorsWithMetadata() throws {
        let a: [Float] = [1, -2, 3.5, 0.25, 1e-3, 65504]
        let b: [Float] = [0.5, -0.125, 3]
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[3],"data_offsets":[24,30]}}"#
        let st = try SafeTensorsFile(data: file(header: header, data: f32Bytes(a) + f16Bytes(b)))
        #expect(st.names == ["a", "b"])
        #expect(st.metadata == ["format": "pt"])
        #expect(try st.floats("a", shape: [2, 3]) == a)
        #expect(try st.floats("b") == b)
        #expect(try st.info("b").dtype == .f16)
    }

    @Test func halfFloatRoundTripsEveryFiniteValue() {
        for bits in UInt16(0)...UInt16(0xFFFF) {
            let exp = (bits >> 10) & 0x1F
            if exp == 31 { continue }  // inf / NaN
            #expect(HalfFloat.fromFloat(HalfFloat.toFloat(bits)) == bits)
        }
        #expect(HalfFloat.toFloat(0x3C00) == 1)
        #expect(HalfFloat.toFloat(0x0001) == 0x1p-24)
        #expect(HalfFloat.fromFloat(1e6) == 0x7C00)
    }

    @Test func rejectsDuplicateTensorNames() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect {
            try SafeTensorsFile(data: file(header: header, data: [UInt8](repeating: 0, count: 8)))
        } throws: { e in
            guard case let .headerNotJSON(j) = e as? SafeTensorsError else { return false }
            return j.reason.contains("duplicate key \"a\"")
        }
    }

    @Test func rejectsOffsetsOutsideTheDataSection() {
        let header = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        #expect(throws: SafeTensorsError.offsetsOutOfBounds(tensor: "w", begin: 0, end: 16, dataBytes: 12)) {
            try SafeTensorsFile(data: file(header: header, data: [UInt8](repeating: 0, count: 12)))
        }
    }

    @Test func rejectsSizeThatDisagreesWithShape() {
        let header = #"{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#
        #expect(throws: SafeTensorsError.sizeMismatch(tensor: "w", expectedBytes: 6, declaredBytes: 8)) {
            try SafeTensorsFile(data: file(header: header, data: [UInt8](repeating: 0, count: 8)))
        }
    }

    @Test func rejectsOverlappingTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(throws: SafeTensorsError.overlapping(tensor: "b", other: "a")) {
            try SafeTensorsFile(data: file(header: header, data: [UInt8](repeating: 0, count: 8)))
        }
    }

    @Test func rejectsShapeOverflowAndUnknownDType() {
        let big = #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#
        #expect(throws: SafeTensorsError.shapeOverflow(tensor: "w", shape: [4294967296, 4294967296])) {
            try SafeTensorsFile(data: file(header: big, data: [0, 0, 0, 0]))
        }
        let odd = #"{"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}"#
        #expect(throws: SafeTensorsError.unknownDType(tensor: "w", dtype: "F8")) {
            try SafeTensorsFile(data: file(header: odd, data: [0]))
        }
        let neg = #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(data: file(header: neg, data: [0, 0, 0, 0])) }
    }

    @Test func rejectsBadHeaderLengthAndTruncatedFiles() {
        #expect(throws: SafeTensorsError.fileTooSmall(bytes: 3)) { try SafeTensorsFile(data: Data([1, 2, 3])) }
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes[0] = 200  // header of 200 bytes in a 16-byte file
        #expect(throws: SafeTensorsError.headerLengthOutOfRange(declared: 200, fileBytes: 16)) {
            try SafeTensorsFile(data: Data(bytes))
        }
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(data: file(header: #"{"a":"#, data: [])) }
        #expect(throws: SafeTensorsError.headerNotObject) { try SafeTensorsFile(data: file(header: "[1]", data: [])) }
    }

    @Test func namesTheMissingOrMisshapenTensor() throws {
        let header = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let st = try SafeTensorsFile(data: file(header: header, data: f32Bytes([1, 2])))
        #expect(throws: SafeTensorsError.missingTensor("v")) { try st.floats("v") }
        #expect(throws: SafeTensorsError.wrongShape(tensor: "w", expected: [1, 2], found: [2])) { try st.floats("w", shape: [1, 2]) }
    }
}
