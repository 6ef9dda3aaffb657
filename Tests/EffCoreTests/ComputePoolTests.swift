import Foundation
import Testing
@testable import EffCore

@Suite struct ComputePoolTests {
    @Test func everyChunkRunsExactlyOnce() {
        for threads in [1, 2, 3] {
            let pool = ComputePool(threads: threads)
            #expect(pool.threadCount == threads)
            let chunks = 37
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: chunks)
            hits.initialize(repeating: 0, count: chunks)
            defer { hits.deallocate() }
            for _ in 0..<300 {
                pool.run(chunks: chunks) { c, n in
                    precondition(n == chunks)
                    hits[c] += 1  // each chunk has one owner, so no race
                }
            }
            #expect((0..<chunks).allSatisfy { hits[$0] == 300 })
        }
    }

    @Test func nestedRunExecutesInline() {
        let pool = ComputePool(threads: 2)
        let out = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        out.initialize(repeating: 0, count: 16)
        defer { out.deallocate() }
        pool.run(chunks: 4) { c, _ in
            pool.run(chunks: 4) { d, _ in out[c * 4 + d] += 1 }
        }
        #expect((0..<16).allSatisfy { out[$0] == 1 })
    }

    @Test func chunksCoverTheRangeExactlyOnAlignedEdges() {
        for count in [0, 1, 15, 16, 17, 100, 1536] {
            for nth in 1...4 {
                var covered = 0
                var last = 0
                for ith in 0..<nth {
                    let r = ComputePool.chunk(ith, of: nth, count: count, align: 16)
                    #expect(r.lowerBound == last)
                    if r.upperBound < count { #expect(r.upperBound % 16 == 0) }
                    last = r.upperBound
                    covered += r.count
                }
                #expect(covered == count && last == count)
            }
        }
    }

    @Test func forEachChunkSumsAndParkedWorkersWakeUp() {
        let pool = ComputePool(threads: 2)
        pool.setSpin(microseconds: 0)  // workers park immediately after each task
        let n = 10_000
        let out = UnsafeMutablePointer<Int>.allocate(capacity: n)
        defer { out.deallocate() }
        for round in 0..<5 {
            out.initialize(repeating: 0, count: n)
            pool.forEachChunk(n, align: 16) { r in for i in r { out[i] = i + round } }
            #expect((0..<n).reduce(0) { $0 + out[$1] } == n * (n - 1) / 2 + n * round)
            usleep(2000)
        }
    }
}
