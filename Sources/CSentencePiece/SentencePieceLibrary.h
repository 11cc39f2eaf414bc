// The sentencepiece headers of the release Kumo links, which scripts/build_sentencepiece.sh builds into
// .build/sentencepiece (`make sentencepiece`; `make build` and `make test` run it first).

#ifndef KUMO_CSENTENCEPIECE_LIBRARY_H
#define KUMO_CSENTENCEPIECE_LIBRARY_H

#if !__has_include(<kumo_sentencepiece_built.h>)
#error "sentencepiece has not been built yet: run `make sentencepiece` (it builds the release Kumo links into .build/sentencepiece), then swift build again"
#endif

// The headers' own inline wrappers call sentencepiece's deprecated overloads; Kumo calls none of them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#pragma GCC diagnostic pop

#endif
