import Testing
@testable import EffTechniques

@Suite struct SkeletonParserTests {
    @Test func parsesNumberedLines() {
        let points = SkeletonParser.parse("1. Set clear goals\n2. Use a schedule\n3. Avoid multitasking")
        #expect(points == [SkeletonPoint(index: 1, text: "Set clear goals"),
                           SkeletonPoint(index: 2, text: "Use a schedule"),
                           SkeletonPoint(index: 3, text: "Avoid multitasking")])
    }

    @Test func firstOfDuplicateIndicesWins() {
        let points = SkeletonParser.parse("1. Alpha\n2. Beta\n2. Gamma\n3. Delta")
        #expect(points.map(\.text) == ["Alpha", "Beta", "Delta"])
    }

    @Test func stopsAtFirstNonNumberedLine() {
        let text = "1. Plan ahead\n\n2. Rest well\nThese tips help everyone.\n3. Not a point"
        #expect(SkeletonParser.parse(text).map(\.index) == [1, 2])
    }

    @Test func junkGivesNoPoints() {
        #expect(SkeletonParser.parse("").isEmpty)
        #expect(SkeletonParser.parse("Sure! Here is an answer.\n1. late").isEmpty)
        #expect(SkeletonParser.parse("1.\n2.   \n").isEmpty)  // empty points are skipped
        #expect(SkeletonParser.parse("123. too many digits").isEmpty)
        #expect(SkeletonParser.parse("1) wrong punctuation").isEmpty)
    }

    @Test func toleratesIndentationAndSpacing() {
        let points = SkeletonParser.parse("1.Eat well\n  2.   Sleep enough  \n\t3. Move daily")
        #expect(points.map(\.text) == ["Eat well", "Sleep enough", "Move daily"])
    }

    @Test func completenessWaitsForAFullNonPointLine() {
        #expect(!SkeletonParser.skeletonIsComplete("1. Eat well"))
        #expect(!SkeletonParser.skeletonIsComplete("1. Eat well\n2. Sle"))
        #expect(!SkeletonParser.skeletonIsComplete("1. Eat well\n\n"))
        #expect(SkeletonParser.skeletonIsComplete("1. Eat well\n2. Sleep\nIn short, balance.\n"))
        #expect(!SkeletonParser.skeletonIsComplete("Hello\nthere\n"))  // no point yet
        // The growing line decides as soon as it cannot begin a point.
        #expect(SkeletonParser.skeletonIsComplete("1. Eat well\n2. Sleep\n\nQuestion"))
        #expect(SkeletonParser.skeletonIsComplete("1. Eat well\nIn"))
        #expect(SkeletonParser.skeletonIsComplete("1. Eat well\n123"))
        #expect(SkeletonParser.skeletonIsComplete("1. Eat well\n3:"))
        #expect(!SkeletonParser.skeletonIsComplete("1. Eat well\n1"))
        #expect(!SkeletonParser.skeletonIsComplete("1. Eat well\n12"))
        #expect(!SkeletonParser.skeletonIsComplete("1. Eat well\n  2."))
        #expect(!SkeletonParser.skeletonIsComplete("Question"))
    }

    @Test func leakageDetectsOtherPointsAndLongText() {
        #expect(!SkeletonParser.leaks(expansion: " - plan each day. It saves time.", index: 2))
        #expect(SkeletonParser.leaks(expansion: " - plan.\n3. Sleep well", index: 2))
        #expect(!SkeletonParser.leaks(expansion: " - plan.\n2. again", index: 2))
        #expect(SkeletonParser.leaks(expansion: " One. Two. Three. Four.", index: 1))
        #expect(!SkeletonParser.leaks(expansion: " Costs rose 3.5 percent. Then fell.", index: 1))
    }

    @Test func sentenceCounting() {
        #expect(SkeletonParser.sentenceCount("") == 0)
        #expect(SkeletonParser.sentenceCount("One sentence without a stop") == 1)
        #expect(SkeletonParser.sentenceCount("Is it? Yes! Fine.") == 3)
        #expect(SkeletonParser.sentenceCount("Pi is 3.14 roughly. Ok.") == 2)
    }
}
