// The SentencePiece vocabulary llama.cpp's converter stores in a T5 GGUF file's metadata
// (`tokenizer.ggml.model` "t5", `tokens`, `scores`, `token_type`, `precompiled_charsmap`, and
// the unknown, end and padding ids), as the `t5-v1_1-xxl-encoder-*.gguf` files carry it. Read,
// it is the tokenizer of the file; `synth` writes it into the GGUF encoders it makes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/formats/gguf.h"
#include "models/text/tokenizer.h"

namespace ditrun::models::text {

// nullopt when the file has no unigram vocabulary ("t5") in its metadata; fails naming
// `source` and the key when one is there but malformed.
std::optional<UnigramVocab> unigram_vocab_from_gguf(const formats::GgufIndex& index, const std::string& source);

std::vector<std::pair<std::string, formats::GgufValue>> gguf_tokenizer_metadata(const UnigramVocab& vocab);

}  // namespace ditrun::models::text
