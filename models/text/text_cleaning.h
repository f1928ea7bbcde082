// The clean-up openai's CLIP tokenizer and Wan's umT5 tokenizer (`clean='whitespace'`) give a
// prompt before splitting it: ftfy's fix_text (NFC stands in for it: mojibake is not
// repaired), HTML entities decoded twice, whitespace runs made one space, trimmed. CLIP then
// lower-cases; Wan does not.
#pragma once

#include <string>

namespace ditrun::models::text {

std::string clean_prompt(const std::string& text);

}  // namespace ditrun::models::text
