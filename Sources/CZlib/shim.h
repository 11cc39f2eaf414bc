// zlib for Swift: the header, and inflateInit2 (a macro Swift cannot call) as a function.
#include <zlib.h>

/// Starts inflating gzip or zlib streams (the header is detected; windowBits 15 + 32).
static inline int kumo_inflate_init(z_stream *stream) {
    return inflateInit2(stream, 15 + 32);
}
