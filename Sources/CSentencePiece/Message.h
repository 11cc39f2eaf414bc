// Helpers shared by the C++ files of this target (not part of the C interface).

#ifndef KUMO_CSENTENCEPIECE_MESSAGE_H
#define KUMO_CSENTENCEPIECE_MESSAGE_H

#include <cstdlib>
#include <cstring>
#include <string>

/// Stores a malloc'ed copy of `message` in `*error` (released by kumo_spm_free_message), if `error` is given.
inline void kumoSetError(char **error, const std::string &message) {
    if (error == nullptr) return;
    *error = static_cast<char *>(std::malloc(message.size() + 1));
    if (*error != nullptr) std::memcpy(*error, message.c_str(), message.size() + 1);
}

#endif
