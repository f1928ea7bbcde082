// SD3.5's conditioning from its three text encoders, as Stability's sd3_infer `get_cond`
// builds it (../shared/testdata has no such case; tests/data/sd3-text-tiny was made from that
// code):
//   - CLIP-L and CLIP-G see the same CLIP tokens: start, the first 75 tokens, end (longer
//     prompts: sd3_impls encodes only the first 77-token chunk), CLIP-L padded with
//     end-of-text and CLIP-G with 0 to 77; each gives its second-to-last layer without the
//     final norm, the two side by side and zero-padded to T5's width: 77 rows;
//   - T5 sees the prompt's first 226 characters (SD3Tokenizer cuts the text, not the
//     tokens), padded with <pad> to at least 77 tokens and never cut, run without a mask;
//     its rows follow: `context` [77 + max(77, T5 tokens), T5 width];
//   - `y`: CLIP-L's pooled row (the final norm's row at the end token, not projected) ‖
//     CLIP-G's projected one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/text/clip_text_encoder.h"
#include "models/text/t5_encoder.h"

namespace ditrun::models::text {

inline constexpr int64_t kSD3ClipTokens = 77, kSD3T5MinTokens = 77;
inline constexpr size_t kSD3T5Characters = 226;

// The text T5 sees: the first 226 code points of the prompt (Python's text[:226]).
std::string sd3_t5_text(const std::string& prompt);

struct SD3Conditioning {
  HostTensor context;  // [77 + T5 rows, T5 width]
  HostTensor y;        // [CLIP-L width + CLIP-G width]
};

// From unpadded ids: `clip_ids` start … end as the CLIP tokenizer encodes (the last is the end
// token), `t5_ids` … </s> as the T5 tokenizer encodes; `t5_pad` is T5's <pad> id. T5's ids are
// padded to at least `t5_rows` (77; more when a guided job's other prompt is longer: the two
// run as one batch, and sd3_impls' own batch of two cannot hold two lengths).
SD3Conditioning sd3_conditioning(ClipTextEncoder& clip_l, ClipTextEncoder& clip_g, T5Encoder& t5,
                                 const std::vector<int64_t>& clip_ids, const std::vector<int64_t>& t5_ids,
                                 int64_t t5_pad, int64_t t5_rows = kSD3T5MinTokens);

}  // namespace ditrun::models::text
