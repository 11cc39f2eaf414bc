import ArgumentParser
import Foundation
import KumoInterop
import KumoModel

/// The `--model` option of commands that read a model: a Hugging Face directory, a GGUF file
/// or a Kumo weights file.
struct ModelOption: ParsableArguments {
    @Option(help: "A Hugging Face LLaMA or Mixtral directory, a GGUF file (llama architecture) or a Kumo weights file.")
    var model: String

    /// Loads the model, turning a load failure into a message naming the file.
    func load() throws -> LlamaModel { try loadModelReportingErrors(path: model) }
}

/// Loads the model at `path`, turning load errors into command-line failures with their message;
/// warns of settings the model's files hold that Kumo does not apply.
func loadModelReportingErrors(path: String) throws -> LlamaModel {
    for warning in ignoredModelSettings(path: path) { printErr("warning: \(warning)") }
    do {
        return try loadModel(path: path)
    } catch let error as ModelConfigError {
        throw ValidationFailure("\(path): \(error.description)")
    }
}
