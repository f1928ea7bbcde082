// SD3.5's prompt conditioning (models/text/sd3_conditioning.h) against Stability's sd3_infer
// `get_cond` on tests/data/sd3-text-tiny (tiny CLIP-L, CLIP-G and T5 with random weights; the
// official tokenizer logic over a stub vocabulary; the one change there: CLIP-L‖CLIP-G padded
// to the tiny T5's width instead of 4096): from the same ids, the padded CLIP and T5 ids,
// `context` (77 CLIP rows, then T5's, at least 77) and `y` within 1e-4, for a short prompt, a
// prompt longer than CLIP's 75 tokens and T5's 226 characters, and the empty negative prompt.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "models/formats/checkpoint.h"
#include "models/pipeline/tensor_files.h"
#include "models/text/sd3_conditioning.h"
#include "models/text/text_encoder_source.h"
#include "models/text/tokenizer.h"
#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "test_paths.h"

namespace ditrun::models::text {
namespace {

std::vector<int64_t> as_ids(const HostTensor& t) { return {t.data.begin(), t.data.end()}; }

// The ids up to and including the first `end` (what the tokenizer gives before padding).
std::vector<int64_t> until(const std::vector<int64_t>& ids, int64_t end) {
  return {ids.begin(), std::find(ids.begin(), ids.end(), end) + 1};
}

struct TinyEncoders {
  TinyEncoders() {
    const auto open = [](const std::string& name) {
      const std::string base = test::project_testdata("sd3-text-tiny/" + name);
      return open_text_encoder(base + ".safetensors", base + ".config.json");
    };
    l = std::make_unique<TextEncoderSource>(open("clip_l"));
    g = std::make_unique<TextEncoderSource>(open("clip_g"));
    t = std::make_unique<TextEncoderSource>(open("t5"));
    backend = runtime::make_cpu_backend({});
    clip_l = std::make_unique<ClipTextEncoder>(l->config.clip, *backend, *l->weights, l->path);
    clip_g = std::make_unique<ClipTextEncoder>(g->config.clip, *backend, *g->weights, g->path);
    t5 = std::make_unique<T5Encoder>(t->config.t5, *backend, *t->weights, t->path);
  }
  std::unique_ptr<TextEncoderSource> l, g, t;
  std::unique_ptr<runtime::Backend> backend;
  std::unique_ptr<ClipTextEncoder> clip_l, clip_g;
  std::unique_ptr<T5Encoder> t5;
};

TEST(SD3Conditioning, ContextAndPooledAsTheOfficialCode) {
  TinyEncoders e;
  EXPECT_EQ(e.g->config.clip.hidden_act, "gelu");
  const auto io = read_host_tensors(test::project_testdata("sd3-text-tiny/io.safetensors"));
  constexpr int64_t kEnd = 299, kEos = 1, kPad = 0;
  for (int p = 0; p < 3; ++p) {
    const std::string pre = "p" + std::to_string(p) + ".";
    const std::vector<int64_t> clip_ids = until(as_ids(io.at(pre + "ids.l")), kEnd);
    const std::vector<int64_t> t5_ids = until(as_ids(io.at(pre + "ids.t5")), kEos);
    // The official padding: CLIP-L with end-of-text, CLIP-G with 0, T5 with <pad> to 77 or more.
    EXPECT_EQ(fit_ids(clip_ids, kSD3ClipTokens, kEnd, kEnd, nullptr), as_ids(io.at(pre + "ids.l"))) << pre;
    EXPECT_EQ(fit_ids(clip_ids, kSD3ClipTokens, kEnd, 0, nullptr), as_ids(io.at(pre + "ids.g"))) << pre;
    const int64_t t5_rows = std::max<int64_t>(kSD3T5MinTokens, int64_t(t5_ids.size()));
    EXPECT_EQ(fit_ids(t5_ids, t5_rows, kEos, kPad, nullptr), as_ids(io.at(pre + "ids.t5"))) << pre;

    const SD3Conditioning c = sd3_conditioning(*e.clip_l, *e.clip_g, *e.t5, clip_ids, t5_ids, kPad);
    EXPECT_LT(test::max_abs_diff(c.context, io.at(pre + "context")), 1e-4) << pre;
    EXPECT_LT(test::max_abs_diff(c.y, io.at(pre + "y")), 1e-4) << pre;
  }
  // The long prompt: CLIP keeps its first chunk (start, 75 tokens, end) of the two the
  // official tokenizer makes.
  const HostTensor& chunks = io.at("p1.ids.l.chunks");
  const std::vector<int64_t> all = as_ids(chunks);
  std::vector<int64_t> every{all.front()};  // start, the tokens of both chunks, end
  for (int c = 0; c < 2; ++c)
    for (int64_t i = 1; i < 77 && all[size_t(c * 77 + i)] != kEnd; ++i) every.push_back(all[size_t(c * 77 + i)]);
  every.push_back(kEnd);
  EXPECT_GT(every.size(), 77u);
  EXPECT_EQ(fit_ids(every, kSD3ClipTokens, kEnd, kEnd, nullptr), as_ids(io.at("p1.ids.l")));
}

TEST(SD3Conditioning, T5SeesTheFirst226Characters) {
  const formats::Checkpoint io(test::project_testdata("sd3-text-tiny/io.safetensors"));
  const std::string prompt = io.safetensors_metadata().at("prompt.1");
  const std::string cut = sd3_t5_text(prompt);
  EXPECT_EQ(cut, prompt.substr(0, 226));
  std::istringstream words(cut);
  int64_t n = 0;
  std::string last;
  for (std::string w; words >> w; ++n) last = w;
  // One stub id per word, then </s>: the official T5 ids of this prompt.
  const HostTensor ids = read_host_tensors(test::project_testdata("sd3-text-tiny/io.safetensors")).at("p1.ids.t5");
  EXPECT_EQ(n + 1, ids.shape[0]);
  // Characters, not bytes: a multi-byte character counts once.
  const std::string accents(300, 'a');
  EXPECT_EQ(sd3_t5_text("é" + accents).size(), size_t(2 + 225));
  EXPECT_EQ(sd3_t5_text("short"), "short");
}

}  // namespace
}  // namespace ditrun::models::text
