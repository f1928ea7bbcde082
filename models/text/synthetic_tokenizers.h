// Tokenizers of any vocabulary size for synthetic text encoders (the built-in models, tests,
// benchmarks): they split real text the way the released ones do (CLIP's byte-level BPE,
// SentencePiece unigram with byte fallback) over a made-up vocabulary, so that every prompt
// maps to ids below the encoder's vocabulary size.
#pragma once

#include <cstdint>
#include <string>

#include "models/text/tokenizer.h"

namespace ditrun::models::text {

// <pad> 0, </s> 1, <unk> 2, the 256 byte pieces, then "▁" and letter strings up to `size`
// pieces (at least 300).
UnigramVocab synthetic_unigram_vocab(int64_t size);

// vocab.json + merges.txt in `dir` (created): the 512 byte symbols, letter merges up to
// `size` − 2 tokens, then <|startoftext|> and <|endoftext|> (the largest id, as in CLIP).
// `size` at least 520.
void write_synthetic_clip_tokenizer(const std::string& dir, int64_t size);

}  // namespace ditrun::models::text
