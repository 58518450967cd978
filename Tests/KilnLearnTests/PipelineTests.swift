import Foundation
import KilnCore
import KilnFrame
import KilnLearn
import Testing

@Suite("Pipelines")
struct PipelineTests {
    static let frame = Frame(names: ["color", "x", "label"], columns: [
        Column.from([.string("b"), .string("a"), .null, .string("b"), .string("c"), .string("b")], type: .string),
        Column(type: .float64, values: .double([1, .nan, 3, 4, -.infinity, 6])),
        Column(type: .int64, values: .int([0, 1, 0, 1, 1, 0])),
    ])

    @Test("MurmurHash3 x86_32 matches the reference vectors")
    func murmur() {
        #expect(murmur3([], seed: 0) == 0)
        #expect(murmur3([], seed: 1) == 0x514E_28B7)
        #expect(murmur3(Array("hello".utf8), seed: 0) == 0x248B_FA47)
        #expect(murmur3(Array("The quick brown fox jumps over the lazy dog".utf8), seed: 0x9747_b28c) == 0x2FA8_26CD)
    }

    @Test("a fitted pipeline survives JSON exactly, infinities included, and transforms the same")
    func persistence() throws {
        var indexer = Stage(.stringIndexer, inputs: ["color"], outputs: ["ci"])
        indexer.handleInvalid = "keep"
        var bucketizer = Stage(.quantileDiscretizer, inputs: ["x"], outputs: ["xb"])
        bucketizer.numBuckets = 3
        bucketizer.handleInvalid = "keep"
        var assembler = Stage(.vectorAssembler, inputs: ["ci", "xb"], outputs: ["features"])
        assembler.handleInvalid = "keep"
        let pipeline = Pipeline(stages: [indexer, Stage(.oneHotEncoder, inputs: ["ci"], outputs: ["cv"]), bucketizer, assembler])
        let (fitted, features, rows) = try pipeline.fit(Self.frame)
        #expect(rows == Array(0..<6))
        #expect(fitted.stages[0].labels == [["b", "a", "c"]])  // by frequency, ties alphabetical
        #expect(fitted.stages[2].splits?[0].first == -.infinity && fitted.stages[2].splits?[0].last == .infinity)
        let data = try LearnJSON.encoder().encode(fitted)
        let back = try LearnJSON.decoder().decode(Pipeline.self, from: data)
        #expect(back == fitted)
        let again = try back.transform(Self.frame)
        #expect(again.features == features)
        // Unseen and null labels take the extra index under keep.
        let other = Frame(names: ["color", "x"], columns: [Column.from([.string("zzz"), .null], type: .string), Column(type: .float64, values: .double([2, 2]))])
        let scored = try back.transform(other)
        #expect(scored.features.dense()[0] == 3 && scored.features.dense()[2] == 3)
    }

    @Test("stage definitions are checked before data is read")
    func validation() {
        #expect(throws: KilnError.self) { try Pipeline(stages: [Stage(.imputer, inputs: ["x"], outputs: [])]).validate() }
        var bad = Stage(.bucketizer, inputs: ["x"], outputs: ["b"])
        bad.splits = [[0, 0, 1]]
        #expect(throws: KilnError.self) { try Pipeline(stages: [bad], featuresCol: "b").validate() }
        #expect(throws: KilnError.self) { try Pipeline(stages: [Stage(.tokenizer, inputs: ["t"], outputs: ["w"])]).validate() }
    }
}
