// A C interface to the sentencepiece library (the release scripts/build_sentencepiece.sh builds), so
// that Swift can use it without C++ interoperability. Every function is safe to call with any
// input: errors are returned, never thrown or aborted on. A loaded processor is immutable; the
// encode and decode functions may be called from several threads at once.

#ifndef KUMO_CSENTENCEPIECE_H
#define KUMO_CSENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A loaded sentencepiece model (opaque).
typedef struct kumo_spm kumo_spm;

/// Receives bytes produced by the library; `data` is only valid during the call.
typedef void (*kumo_spm_sink)(void *context, const char *data, size_t length);

/// Loads the model file at `path`. On failure returns NULL and, when `error` is not NULL,
/// stores a message in `*error` that the caller releases with `kumo_spm_free_message`.
kumo_spm *kumo_spm_load(const char *path, char **error);

/// Releases a processor returned by `kumo_spm_load` (NULL is ignored).
void kumo_spm_free(kumo_spm *processor);

/// Releases an error message returned through an `error` argument (NULL is ignored).
void kumo_spm_free_message(char *message);

/// Encodes `length` bytes of UTF-8 `text` into ids. Writes at most `capacity` ids to `ids` and
/// returns how many the text has (call again with a larger buffer if that exceeds `capacity`),
/// or -1 on failure with a message in `*error`.
int64_t kumo_spm_encode_ids(
    const kumo_spm *processor, const char *text, size_t length, int32_t *ids, size_t capacity, char **error);

/// Encodes `length` bytes of UTF-8 `text` and calls `sink` once per piece, in order. Returns the
/// number of pieces, or -1 on failure with a message in `*error`.
int64_t kumo_spm_encode_pieces(
    const kumo_spm *processor, const char *text, size_t length, kumo_spm_sink sink, void *context, char **error);

/// Decodes `count` ids into text, passed to `sink` in one call. Returns 0, or -1 with a message
/// in `*error` (for example when an id is outside 0..<piece count).
int kumo_spm_decode_ids(
    const kumo_spm *processor, const int32_t *ids, size_t count, kumo_spm_sink sink, void *context, char **error);

/// Number of pieces in the vocabulary.
int32_t kumo_spm_piece_count(const kumo_spm *processor);

/// Passes the piece of `id` to `sink`; returns 0, or -1 when `id` is out of range.
int kumo_spm_id_to_piece(const kumo_spm *processor, int32_t id, kumo_spm_sink sink, void *context);

/// Score of `id` (log probability for unigram models, merge rank for BPE); 0 when out of range.
float kumo_spm_score(const kumo_spm *processor, int32_t id);

/// Id of the piece spelled by `length` bytes at `piece`, or -1 when the vocabulary lacks it.
int32_t kumo_spm_piece_to_id(const kumo_spm *processor, const char *piece, size_t length);

/// Id of the unknown piece (every model has one).
int32_t kumo_spm_unk_id(const kumo_spm *processor);
/// Id of the beginning-of-sentence piece, or -1 when the model has none.
int32_t kumo_spm_bos_id(const kumo_spm *processor);
/// Id of the end-of-sentence piece, or -1 when the model has none.
int32_t kumo_spm_eos_id(const kumo_spm *processor);
/// Id of the padding piece, or -1 when the model has none.
int32_t kumo_spm_pad_id(const kumo_spm *processor);

/// Whether `id` is a byte-fallback piece (`<0x00>`..`<0xFF>`); false when out of range.
int kumo_spm_is_byte(const kumo_spm *processor, int32_t id);
/// Whether `id` is a control piece (such as `<s>`, decoded as nothing); false when out of range.
int kumo_spm_is_control(const kumo_spm *processor, int32_t id);
/// Whether `id` is the unknown piece; false when out of range.
int kumo_spm_is_unknown(const kumo_spm *processor, int32_t id);
/// Whether `id` is an unused piece; false when out of range.
int kumo_spm_is_unused(const kumo_spm *processor, int32_t id);

/// Supplies the next training sentence: stores its bytes in `*data` and `*length` (valid until the
/// next call) and returns 1, or returns 0 when there are no more sentences.
typedef int (*kumo_spm_next_sentence)(void *context, const char **data, size_t *length);

/// Trains a model with sentencepiece's trainer, configured by `count` option pairs named as
/// spm_train's flags (without dashes), on the sentences `next` supplies. On success passes the
/// serialized model to `sink` and returns 0; on failure returns -1 with a message in `*error`.
int kumo_spm_train(
    const char *const *keys, const char *const *values, size_t count, kumo_spm_next_sentence next,
    void *next_context, kumo_spm_sink sink, void *sink_context, char **error);

/// Sets the lowest severity sentencepiece logs to stderr: 0 information, 1 warnings, 2 errors.
void kumo_spm_set_log_level(int level);

#ifdef __cplusplus
}
#endif

#endif
