// The C interface declared in include/CSentencePiece.h, over sentencepiece::SentencePieceProcessor.
// No C++ exception crosses this boundary: each entry point catches and reports as an error.

#include "CSentencePiece.h"
#include "Message.h"
#include "SentencePieceLibrary.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

struct kumo_spm {
    sentencepiece::SentencePieceProcessor processor;
};

namespace {

bool inRange(const kumo_spm *p, int32_t id) {
    return p != nullptr && id >= 0 && id < p->processor.GetPieceSize();
}

}  // namespace

extern "C" {

kumo_spm *kumo_spm_load(const char *path, char **error) {
    if (path == nullptr) {
        kumoSetError(error, "no model path given");
        return nullptr;
    }
    try {
        auto p = std::make_unique<kumo_spm>();
        const auto status = p->processor.Load(path);
        if (!status.ok()) {
            kumoSetError(error, status.ToString());
            return nullptr;
        }
        if (p->processor.GetPieceSize() <= 0) {
            kumoSetError(error, "the model has no pieces");
            return nullptr;
        }
        return p.release();
    } catch (const std::exception &e) {
        kumoSetError(error, std::string("sentencepiece failed: ") + e.what());
    } catch (...) {
        kumoSetError(error, "sentencepiece failed with an unknown exception");
    }
    return nullptr;
}

void kumo_spm_free(kumo_spm *processor) { delete processor; }

void kumo_spm_free_message(char *message) { std::free(message); }

int64_t kumo_spm_encode_ids(
    const kumo_spm *processor, const char *text, size_t length, int32_t *ids, size_t capacity, char **error) {
    try {
        std::vector<int> result;
        const auto status = processor->processor.Encode(std::string_view(text, length), &result);
        if (!status.ok()) {
            kumoSetError(error, status.ToString());
            return -1;
        }
        const size_t n = result.size() < capacity ? result.size() : capacity;
        for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(result[i]);
        return static_cast<int64_t>(result.size());
    } catch (const std::exception &e) {
        kumoSetError(error, std::string("sentencepiece failed: ") + e.what());
    } catch (...) {
        kumoSetError(error, "sentencepiece failed with an unknown exception");
    }
    return -1;
}

int64_t kumo_spm_encode_pieces(
    const kumo_spm *processor, const char *text, size_t length, kumo_spm_sink sink, void *context, char **error) {
    try {
        std::vector<std::string> result;
        const auto status = processor->processor.Encode(std::string_view(text, length), &result);
        if (!status.ok()) {
            kumoSetError(error, status.ToString());
            return -1;
        }
        for (const auto &piece : result) sink(context, piece.data(), piece.size());
        return static_cast<int64_t>(result.size());
    } catch (const std::exception &e) {
        kumoSetError(error, std::string("sentencepiece failed: ") + e.what());
    } catch (...) {
        kumoSetError(error, "sentencepiece failed with an unknown exception");
    }
    return -1;
}

int kumo_spm_decode_ids(
    const kumo_spm *processor, const int32_t *ids, size_t count, kumo_spm_sink sink, void *context, char **error) {
    try {
        std::vector<int> input(count);
        for (size_t i = 0; i < count; ++i) {
            if (!inRange(processor, ids[i])) {
                kumoSetError(error, "id " + std::to_string(ids[i]) + " is outside the vocabulary (0..<"
                                    + std::to_string(processor->processor.GetPieceSize()) + ")");
                return -1;
            }
            input[i] = ids[i];
        }
        std::string text;
        const auto status = processor->processor.Decode(absl::MakeConstSpan(input), &text);
        if (!status.ok()) {
            kumoSetError(error, status.ToString());
            return -1;
        }
        sink(context, text.data(), text.size());
        return 0;
    } catch (const std::exception &e) {
        kumoSetError(error, std::string("sentencepiece failed: ") + e.what());
    } catch (...) {
        kumoSetError(error, "sentencepiece failed with an unknown exception");
    }
    return -1;
}

int32_t kumo_spm_piece_count(const kumo_spm *processor) { return processor->processor.GetPieceSize(); }

int kumo_spm_id_to_piece(const kumo_spm *processor, int32_t id, kumo_spm_sink sink, void *context) {
    if (!inRange(processor, id)) return -1;
    const std::string &piece = processor->processor.IdToPiece(id);
    sink(context, piece.data(), piece.size());
    return 0;
}

float kumo_spm_score(const kumo_spm *processor, int32_t id) {
    return inRange(processor, id) ? processor->processor.GetScore(id) : 0;
}

int32_t kumo_spm_piece_to_id(const kumo_spm *processor, const char *piece, size_t length) {
    const std::string_view wanted(piece, length);
    const int id = processor->processor.PieceToId(wanted);
    // PieceToId answers the unknown id for pieces it lacks; tell those apart.
    if (!inRange(processor, id) || processor->processor.IdToPiece(id) != wanted) return -1;
    return id;
}

int32_t kumo_spm_unk_id(const kumo_spm *processor) { return processor->processor.unk_id(); }
int32_t kumo_spm_bos_id(const kumo_spm *processor) { return processor->processor.bos_id(); }
int32_t kumo_spm_eos_id(const kumo_spm *processor) { return processor->processor.eos_id(); }
int32_t kumo_spm_pad_id(const kumo_spm *processor) { return processor->processor.pad_id(); }

int kumo_spm_is_byte(const kumo_spm *processor, int32_t id) {
    return inRange(processor, id) && processor->processor.IsByte(id);
}
int kumo_spm_is_control(const kumo_spm *processor, int32_t id) {
    return inRange(processor, id) && processor->processor.IsControl(id);
}
int kumo_spm_is_unknown(const kumo_spm *processor, int32_t id) {
    return inRange(processor, id) && processor->processor.IsUnknown(id);
}
int kumo_spm_is_unused(const kumo_spm *processor, int32_t id) {
    return inRange(processor, id) && processor->processor.IsUnused(id);
}

}  // extern "C"
