// Internal: tensor shapes by name, for the per-family detectors. Dimensions are read from the
// innermost end because GGUF files may trim leading size-1 dims (Wan modulation [1,6,d] may
// arrive as [6,d]); a missing tensor fails as "cannot detect the architecture".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "models/arch/detect.h"

namespace ditrun::arch::detail {

class ShapeIndex {
 public:
  ShapeIndex(const std::vector<NamedShape>& tensors, std::string source, std::string_view family_label);

  bool has(std::string_view name) const { return by_name_.count(std::string(name)) != 0; }
  const formats::Shape& shape(std::string_view name) const;  // fails if absent
  // Dim `k` counted from the innermost (k = 0 is the last PyTorch dim); fails if absent or too short.
  int64_t inner(std::string_view name, size_t k) const;
  int64_t numel(std::string_view name) const;
  // Number of blocks named `<prefix><i>.`: checks indices run 0..n-1 without gaps.
  int64_t count_blocks(std::string_view prefix) const;
  // Indices i for which `<prefix><i><suffix>` exists, ascending.
  std::vector<int64_t> blocks_with(std::string_view prefix, std::string_view suffix, int64_t count) const;

  // "<source>: cannot detect the architecture: <family> <what>" as a one-line Error.
  [[noreturn]] void fail_detect(const std::string& what) const;
  const std::string& source() const { return source_; }

 private:
  std::unordered_map<std::string, formats::Shape> by_name_;
  std::vector<std::string> names_;
  std::string source_;
  std::string family_;
};

// Index of a block for names `<prefix><digits>.<rest>`; nullopt otherwise.
std::optional<int64_t> block_index(std::string_view name, std::string_view prefix);

// Per-family detectors: fill the params the shapes determine; push the names of guessed ones.
Params detect_flux(const ShapeIndex& t, std::vector<std::string>& assumed);
Params detect_wan(const ShapeIndex& t, std::vector<std::string>& assumed);
Params detect_qwen_image(const ShapeIndex& t, std::vector<std::string>& assumed);
Params detect_sd3(const ShapeIndex& t, std::vector<std::string>& assumed);

// A RoPE axis split for a head dim that no release uses: the first (temporal / index) axis gets
// about D/8 rounded to even, the two spatial axes share the rest as evenly as pairs allow.
// For D = 128 this is Flux's and Qwen-Image's [16, 56, 56].
std::vector<int64_t> guess_rope_axes(int64_t head_dim);

}  // namespace ditrun::arch::detail
