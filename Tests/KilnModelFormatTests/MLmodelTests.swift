import KilnCore
import KilnModelFormat
import Testing

@Suite("The MLmodel format")
struct MLmodelTests {
    // As mlflow 3.17 writes it for a scikit-learn model.
    static let sklearn = """
        artifact_path: model
        flavors:
          python_function:
            env:
              conda: conda.yaml
              virtualenv: python_env.yaml
            loader_module: mlflow.sklearn
            model_path: model.pkl
            predict_fn: predict
            python_version: 3.11.7
          sklearn:
            code: null
            pickled_model: model.pkl
            serialization_format: cloudpickle
            sklearn_version: 1.9.1
        mlflow_version: 3.17.2
        model_id: m-0123456789abcdef
        model_size_bytes: 1049
        model_uuid: 8f6a
        prompts: null
        run_id: abc123
        saved_input_example_info:
          artifact_path: input_example.json
          type: ndarray
        signature:
          inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]'
          outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
          params: null
        utc_time_created: '2026-11-28 18:00:00.000000'
        """

    @Test("parses flavors, signature, identity and input example")
    func parses() throws {
        let model = try MLmodel.parse(Self.sklearn)
        #expect(Set(model.flavors.keys) == ["python_function", "sklearn"])
        #expect(model.pythonLoaderModule == "mlflow.sklearn")
        #expect(model.flavors["sklearn"]?["sklearn_version"]?.text == "1.9.1")
        #expect(model.runID == "abc123")
        #expect(model.modelID == "m-0123456789abcdef")
        #expect(model.modelSizeBytes == 1049)
        #expect(model.signature?.inputs?.contains("float64") == true)
        #expect(model.signature?.params == nil)
        #expect(model.inputExample?["type"]?.text == "ndarray")
        #expect(model.other["prompts"] == .null)
    }

    @Test("writes YAML that parses back to the same model")
    func roundTrips() throws {
        let model = try MLmodel.parse(Self.sklearn)
        #expect(try MLmodel.parse(try model.yaml()) == model)
        let native = MLmodel(flavors: ["kiln": .map(["format_version": .int(1), "estimator": .string("xgboost")])],
                             artifactPath: "model", signature: ModelSignature(inputs: "[]", outputs: nil))
        #expect(try MLmodel.parse(try native.yaml()) == native)
    }

    @Test("rejects files that are not MLmodels", arguments: ["", "- a\n- b", "flavors: 3", "a: [unclosed"])
    func rejects(text: String) {
        let error = #expect(throws: KilnError.self) { try MLmodel.parse(text) }
        #expect(error?.code == .invalidParameterValue)
    }

    @Test("reads requirements.txt lines without comments")
    func requirements() {
        #expect(MLmodel.requirements("mlflow==3.17.2\n# pinned\nscikit-learn==1.9.1  # sklearn\n\n") == ["mlflow==3.17.2", "scikit-learn==1.9.1"])
    }
}
