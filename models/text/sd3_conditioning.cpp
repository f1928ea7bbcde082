#include "models/text/sd3_conditioning.h"

#include <algorithm>
#include <span>

#include "models/text/tokenizer.h"
#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

// Row r of a [1, L, width] (or [1, width]) tensor into `to`.
void copy_row(const HostTensor& from, int64_t r, std::span<float> to) {
  const int64_t width = from.shape.back();
  std::copy_n(from.data.begin() + r * width, width, to.begin());
}

}  // namespace

std::string sd3_t5_text(const std::string& prompt) {
  size_t i = 0;
  for (size_t count = 0; i < prompt.size() && count < kSD3T5Characters; ++count) {
    const auto lead = static_cast<unsigned char>(prompt[i]);
    i += lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;  // the UTF-8 sequence's length
  }
  return prompt.substr(0, std::min(i, prompt.size()));
}

SD3Conditioning sd3_conditioning(ClipTextEncoder& clip_l, ClipTextEncoder& clip_g, T5Encoder& t5,
                                 const std::vector<int64_t>& clip_ids, const std::vector<int64_t>& t5_ids,
                                 int64_t t5_pad, int64_t t5_rows_at_least) {
  if (clip_ids.size() < 2 || t5_ids.empty()) fail("SD3 conditioning: CLIP needs start and end tokens, T5 its </s>");
  const int64_t end = clip_ids.back();
  const ClipTextOutputs l = clip_l.encode(ids_tensor(fit_ids(clip_ids, kSD3ClipTokens, end, end, nullptr)));
  const ClipTextOutputs g = clip_g.encode(ids_tensor(fit_ids(clip_ids, kSD3ClipTokens, end, 0, nullptr)));
  const int64_t t5_rows = std::max({kSD3T5MinTokens, t5_rows_at_least, int64_t(t5_ids.size())});
  const HostTensor t5_out = t5.encode(ids_tensor(fit_ids(t5_ids, t5_rows, t5_ids.back(), t5_pad, nullptr)), {});

  const int64_t wl = l.penultimate.shape.back(), wg = g.penultimate.shape.back(), C = t5_out.shape.back();
  if (wl + wg > C) fail("SD3 conditioning: CLIP widths {} + {} exceed T5's {}", wl, wg, C);
  SD3Conditioning out{HostTensor(Shape{kSD3ClipTokens + t5_rows, C}), HostTensor(Shape{wl + wg})};
  std::span<float> rows(out.context.data);  // zeros past CLIP-L ‖ CLIP-G
  for (int64_t r = 0; r < kSD3ClipTokens; ++r) {
    copy_row(l.penultimate, r, rows.subspan(size_t(r * C), size_t(wl)));
    copy_row(g.penultimate, r, rows.subspan(size_t(r * C + wl), size_t(wg)));
  }
  std::copy(t5_out.data.begin(), t5_out.data.end(), out.context.data.begin() + kSD3ClipTokens * C);
  copy_row(l.pooled, 0, std::span<float>(out.y.data).first(size_t(wl)));
  copy_row(g.pooled_projected, 0, std::span<float>(out.y.data).subspan(size_t(wl)));
  return out;
}

}  // namespace ditrun::models::text
