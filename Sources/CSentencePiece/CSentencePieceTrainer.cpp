// kumo_spm_train and kumo_spm_set_log_level (include/CSentencePiece.h) over
// sentencepiece::SentencePieceTrainer. No C++ exception crosses this boundary.

#include "CSentencePiece.h"
#include "Message.h"
#include "SentencePieceLibrary.h"

#include <exception>
#include <string>
#include <unordered_map>

namespace {

/// Pulls sentences from the C callback; the trainer asks done() before reading each value().
class CallbackSentences : public sentencepiece::SentenceIterator {
   public:
    CallbackSentences(kumo_spm_next_sentence next, void *context) : next_(next), context_(context) { Next(); }
    bool done() const override { return done_; }
    void Next() override {
        const char *data = nullptr;
        size_t length = 0;
        if (!done_ && next_(context_, &data, &length) == 1) {
            value_.assign(data, length);
        } else {
            done_ = true;
            value_.clear();
        }
    }
    const std::string &value() const override { return value_; }
    absl::Status status() const override { return absl::Status(); }

   private:
    kumo_spm_next_sentence next_;
    void *context_;
    std::string value_;
    bool done_ = false;
};

}  // namespace

extern "C" {

int kumo_spm_train(
    const char *const *keys, const char *const *values, size_t count, kumo_spm_next_sentence next,
    void *next_context, kumo_spm_sink sink, void *sink_context, char **error) {
    if (next == nullptr || sink == nullptr || (count > 0 && (keys == nullptr || values == nullptr))) {
        kumoSetError(error, "kumo_spm_train: missing argument");
        return -1;
    }
    try {
        std::unordered_map<std::string, std::string> options;
        for (size_t i = 0; i < count; i++) options[keys[i]] = values[i];
        CallbackSentences sentences(next, next_context);
        std::string model;
        const auto status = sentencepiece::SentencePieceTrainer::Train(options, &sentences, &model);
        if (!status.ok()) {
            kumoSetError(error, status.ToString());
            return -1;
        }
        sink(sink_context, model.data(), model.size());
        return 0;
    } catch (const std::exception &e) {
        kumoSetError(error, std::string("sentencepiece training failed: ") + e.what());
    } catch (...) {
        kumoSetError(error, "sentencepiece training failed with an unknown exception");
    }
    return -1;
}

void kumo_spm_set_log_level(int level) { sentencepiece::SetMinLogLevel(level); }

}  // extern "C"
