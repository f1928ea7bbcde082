// Prompts to conditioning: the synthetic tokenizers and encoders (`synth --arch t5|umt5|clip`,
// the built-in model's), the encoder layout against detection, llama.cpp's T5 names, what
// Flux and Wan make of a prompt (prompt_conditioner.h) and its errors, and the prompt cache.
#include <gtest/gtest.h>

#include <filesystem>

#include "launcher/prompt_cache.h"
#include "launcher/text_encoders.h"
#include "models/arch/detect.h"
#include "models/pipeline/model_source.h"
#include "models/text/prompt_conditioner.h"
#include "models/text/synthetic_tokenizers.h"
#include "models/text/text_encoder_source.h"
#include "models/text/text_encoder_synth.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::models::text {

// A synthetic encoder of `preset` (seed 7) in a fresh folder, its tokenizer beside it.
std::string synth(const std::string& preset, const std::string& file, const std::string& weights = "bf16") {
  const std::string path = test::temp_dir("text-" + preset + "-" + weights) + "/" + file;
  write_synthetic_text_encoder(text_encoder_preset(preset), quant::ConversionTarget::parse(weights), 7, path);
  return path;
}

namespace {

TEST(SyntheticTokenizers, SplitRealTextIntoIdsOfTheVocabulary) {
  const std::string dir = test::temp_dir("synthetic-tokenizers");
  const std::string proto = sentencepiece_model_proto(synthetic_unigram_vocab(384));
  const auto spm = sentencepiece_from_model({reinterpret_cast<const uint8_t*>(proto.data()), proto.size()}, "synthetic");
  write_synthetic_clip_tokenizer(dir + "/clip", 640);
  const auto clip = open_tokenizer(dir + "/clip");
  for (const std::string text : {"a red fox in the snow", "", "Ünïcödé 日本 text, with punctuation!"}) {
    const std::vector<int64_t> t5_ids = spm->encode(text);
    ASSERT_FALSE(t5_ids.empty());
    EXPECT_EQ(t5_ids.back(), 1) << "</s> last";
    for (int64_t id : t5_ids) EXPECT_TRUE(id >= 0 && id < 384) << text;
    const std::vector<int64_t> clip_ids = clip->encode(text);
    EXPECT_EQ(clip_ids.front(), 638) << "<|startoftext|>";
    EXPECT_EQ(clip_ids.back(), 639) << "<|endoftext|> is the largest id, as in CLIP";
    for (int64_t id : clip_ids) EXPECT_TRUE(id >= 0 && id < 640) << text;
  }
  // Strings of the vocabulary are whole pieces: "ab" is "▁ab" and </s>, not bytes.
  EXPECT_EQ(spm->encode("ab").size(), 2u);
  EXPECT_EQ(clip->encode("ab").size(), 3u);
}

TEST(TextEncoderFiles, SynthRecordsItsConfigAndDetectionAgrees) {
  for (const std::string preset : {"t5-builtin", "umt5-builtin", "clip-builtin"}) {
    const std::string path = synth(preset, preset + ".safetensors");
    const TextEncoderSource src = open_text_encoder(path, std::nullopt, TokenizerSearch{});
    EXPECT_EQ(src.config, text_encoder_preset(preset)) << preset;
    EXPECT_EQ(src.config_source, "recorded in the file");
    ASSERT_TRUE(src.tokenizer) << "the tokenizer beside the file";
    const auto architecture = text_encoder_architecture(named_shapes(*src.weights));
    ASSERT_TRUE(architecture);
    EXPECT_EQ(*architecture, src.config.architecture);
    if (!src.config.is_clip()) {
      EXPECT_EQ(detect_t5(named_shapes(*src.weights), path), src.config.t5) << preset;
    }
  }
}

TEST(TextEncoderFiles, LlamaCppAndWanNamesMapBothWays) {
  for (const std::string preset : {"umt5-builtin", "t5-builtin"}) {
    const TextEncoderConfig config = text_encoder_preset(preset);
    for (const NamedShape& t : text_encoder_layout(config))
      for (const T5Naming naming : {T5Naming::LlamaCpp, T5Naming::Wan}) {
        const auto name = t5_name_as(t.name, naming, config.t5.shared_pos);
        ASSERT_TRUE(name) << t.name;
        EXPECT_EQ(t5_name_from(*name, naming), t.name) << to_string(naming);
      }
  }
  EXPECT_EQ(t5_name_as("encoder.block.3.layer.1.DenseReluDense.wi_0.weight", T5Naming::LlamaCpp), "enc.blk.3.ffn_gate.weight");
  EXPECT_EQ(t5_name_as("encoder.block.3.layer.1.DenseReluDense.wi_0.weight", T5Naming::Wan), "blocks.3.ffn.gate.0.weight");
  EXPECT_EQ(t5_name_from("enc.blk.0.attn_rel_b.weight", T5Naming::LlamaCpp),
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  EXPECT_EQ(t5_name_from("pos_embedding.embedding.weight", T5Naming::Wan),
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  EXPECT_FALSE(t5_name_from("dec.blk.0.attn_q.weight", T5Naming::LlamaCpp));
}

// A GGUF T5 (llama.cpp's names) and the safetensors one of a seed encode alike: bf16 exactly,
// Q8_0 within its rounding.
TEST(TextEncoderFiles, GgufAndSafetensorsOfOneSeedAgree) {
  const std::string st = synth("t5-builtin", "t5.safetensors");
  const std::string gg = synth("t5-builtin", "t5.gguf");
  const std::string q8 = synth("t5-builtin", "t5.gguf", "q8_0");
  auto backend = runtime::make_cpu_backend({});
  HostTensor ids(Shape{1, 6}, {5, 17, 300, 42, 9, 1});
  std::vector<HostTensor> outs;
  for (const std::string& path : {st, gg, q8}) {
    const TextEncoderSource src = open_text_encoder(path);
    T5Encoder encoder(src.config.t5, *backend, *src.weights, path);
    outs.push_back(encoder.encode(ids, {}));
  }
  EXPECT_EQ(outs[0].data, outs[1].data);
  // The GGUF carries its vocabulary as llama.cpp's files do, and it tokenizes alike.
  const TextEncoderSource from_st = open_text_encoder(st, std::nullopt, TokenizerSearch{});
  const TextEncoderSource from_gguf = open_text_encoder(gg, std::nullopt, TokenizerSearch{});
  EXPECT_NE(from_gguf.tokenizer->describe().find("tokenizer.ggml"), std::string::npos) << from_gguf.tokenizer->describe();
  EXPECT_FALSE(std::filesystem::exists(tokenizer_folder_beside(gg)));
  for (const std::string text : {"a red fox", "Ünïcödé 日本"})
    EXPECT_EQ(from_gguf.tokenizer->encode(text), from_st.tokenizer->encode(text)) << text;
  double error = 0, norm = 0;
  for (size_t i = 0; i < outs[0].data.size(); ++i) {
    error += std::pow(double(outs[0].data[i]) - outs[2].data[i], 2);
    norm += std::pow(double(outs[0].data[i]), 2);
  }
  EXPECT_GT(error, 0);
  // Measured 0.036 (Q8_0 weights and activations through two random layers); a wrong tensor
  // would give ~1.
  EXPECT_LT(std::sqrt(error / norm), 0.06) << "Q8_0 against bf16, relative";
}

struct Encoders {
  TextEncoderSource t5, clip, umt5;
  std::unique_ptr<runtime::Backend> backend = runtime::make_cpu_backend({});
  Encoders()
      : t5(open_text_encoder(synth("t5-builtin", "t5.safetensors"), std::nullopt, TokenizerSearch{})),
        clip(open_text_encoder(synth("clip-builtin", "clip.safetensors"), std::nullopt, TokenizerSearch{})),
        umt5(open_text_encoder(synth("umt5-builtin", "umt5.safetensors"), std::nullopt, TokenizerSearch{})) {}
  PlacedEncoder on(const TextEncoderSource& s) { return {&s, backend.get(), false}; }
};

TEST(PromptConditioner, FluxPadsT5AndPoolsClip) {
  Encoders e;
  for (const std::string variant : {"flux-tiny", "flux-tiny-schnell"}) {
    arch::ModelConfig model = arch::preset("flux-tiny", "test");
    if (variant == "flux-tiny-schnell") std::get<arch::FluxParams>(model.params).guidance_embed = false;
    PromptConditioner conditioner(model, e.on(e.clip), e.on(e.t5));
    std::vector<PromptTokens> tokens;
    const runtime::HostTensors c = conditioner.encode("a red fox", std::nullopt, &tokens);
    const int64_t length = variant == "flux-tiny" ? 512 : 256;  // dev, schnell
    EXPECT_EQ(c.at("txt").shape, (Shape{length, 64})) << variant;
    EXPECT_EQ(c.at("y").shape, (Shape{32}));
    ASSERT_EQ(tokens.size(), 2u);
    EXPECT_FALSE(tokens[0].truncated());
    EXPECT_THROW(conditioner.encode("a red fox", std::string("blurry")), Error) << "Flux takes no negative prompt";
  }
}

TEST(PromptConditioner, WanTrimsToThePromptAndEncodesTheNegative) {
  Encoders e;
  const arch::ModelConfig model = arch::preset("wan-tiny", "test");
  PromptConditioner conditioner(model, std::nullopt, e.on(e.umt5));
  const Tokenizer& tokenizer = *e.umt5.tokenizer;
  const runtime::HostTensors c = conditioner.encode("fox", std::string("blurry, low quality"));
  EXPECT_EQ(c.at("context").shape, (Shape{int64_t(tokenizer.encode("fox").size()), 32}));
  EXPECT_EQ(c.at("context_neg").shape[0], std::min<int64_t>(12, int64_t(tokenizer.encode("blurry, low quality").size())));
  // Longer than wan-tiny's text_len (12): cut, </s> kept, reported.
  std::vector<PromptTokens> tokens;
  const runtime::HostTensors cut =
      conditioner.encode("one two three four five six seven eight nine ten eleven twelve thirteen", std::nullopt, &tokens);
  EXPECT_EQ(cut.at("context").shape[0], 12);
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_TRUE(tokens[0].truncated());
  EXPECT_FALSE(cut.contains("context_neg"));
  // The empty prompt is valid: </s> alone.
  EXPECT_EQ(conditioner.encode("", std::nullopt).at("context").shape[0], 1);
  EXPECT_FALSE(default_negative_prompt(model).empty());
}

TEST(PromptConditioner, WrongEncodersFailNamingTheOption) {
  Encoders e;
  const arch::ModelConfig flux = arch::preset("flux-tiny", "test");
  const auto message = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  // umT5 (width 32) where Flux's T5 (context 64) belongs.
  EXPECT_NE(message([&] { PromptConditioner(flux, e.on(e.clip), e.on(e.umt5)); }).find("--t5"), std::string::npos);
  EXPECT_NE(message([&] { PromptConditioner(flux, e.on(e.clip), e.on(e.umt5)); }).find("umt5"), std::string::npos);
  EXPECT_NE(message([&] { PromptConditioner(flux, std::nullopt, e.on(e.t5)); }).find("--clip"), std::string::npos);
  // A T5 of the wrong width for Wan's text_dim.
  const std::string wrong_width = message([&] { PromptConditioner(arch::preset("wan-tiny", "test"), std::nullopt, e.on(e.t5)); });
  EXPECT_NE(wrong_width.find("--text-encoder"), std::string::npos) << wrong_width;
}

}  // namespace
}  // namespace ditrun::models::text

namespace ditrun::launcher {
namespace {

TEST(PromptCache, RemembersAndReadsBackFromItsFolder) {
  const std::string dir = test::temp_dir("prompt-cache");
  int encoded = 0;
  const auto encode = [&] {
    ++encoded;
    return runtime::HostTensors{{"txt", HostTensor(Shape{2, 3}, {1, 2, 3, 4, 5, 6})}};
  };
  {
    PromptCache cache(dir);
    bool hit = true;
    EXPECT_EQ(cache.get("k1", encode, &hit).at("txt").data[5], 6);
    EXPECT_FALSE(hit);
    cache.get("k1", encode, &hit);
    EXPECT_TRUE(hit);
    cache.get("k2", encode);
    EXPECT_EQ(encoded, 2);
    EXPECT_EQ(cache.encodings(), 2u);
    EXPECT_EQ(cache.hits(), 1u);
  }
  PromptCache again(dir);  // a later run into the same folder (--resume)
  bool hit = false;
  EXPECT_EQ(again.get("k2", encode, &hit).at("txt").shape, (Shape{2, 3}));
  EXPECT_TRUE(hit);
  EXPECT_EQ(encoded, 2);
  size_t files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) files += f.path().extension() == ".safetensors";
  EXPECT_EQ(files, 2u);
  PromptCache memory_only("");
  memory_only.get("k1", encode);
  EXPECT_EQ(encoded, 3);
}

// The DiT's plan and the encoders' room decided together: room is kept on rank 0's GPU only
// when the encodings it speeds up outweigh the DiT's slower steps.
TEST(PlanWithEncoders, KeepsRoomOnlyWhenTheJobGetsShorter) {
  TextEncoderOptions options;
  options.t5 = models::text::synth("t5-builtin", "t5.safetensors");
  options.clip = models::text::synth("clip-builtin", "clip.safetensors");
  const RunEncoders encoders(options, arch::preset("flux-tiny", "test"), "", false);
  // A GPU and a very slow host: the encoders belong on the GPU if they can have room there.
  partition::DeviceSpec gpu;
  gpu.name = "cuda:0";
  gpu.total_bytes = gpu.free_bytes = uint64_t(8) << 30;
  gpu.throughput.gemm_flops = {{"bf16", 1e14}};
  gpu.throughput.attention_flops = gpu.throughput.memory_bytes_per_s = 1e12;
  gpu.throughput.host_to_device_bytes_per_s = 2e10;
  partition::DeviceInventory inventory = partition::make_inventory({gpu}, uint64_t(64) << 30, uint64_t(64) << 30);
  for (auto& d : inventory.devices)
    if (d.kind == partition::HardwareKind::cpu) {
      d.throughput.gemm_flops = {{"bf16", 1e6}};
      d.throughput.attention_flops = d.throughput.memory_bytes_per_s = 1e6;
    }
  // The DiT fills its budget; keeping room costs `penalty` seconds per job.
  const auto plans = [&](double penalty) {
    return [&inventory, penalty](uint64_t reserved) {
      ModelPlan p;
      p.inventory = inventory;
      partition::RankPlan r;
      r.device = "cuda:0";
      r.budget_bytes = r.peak_bytes = (uint64_t(8) << 30) - reserved;
      p.plan.ranks.push_back(r);
      p.plan.predicted.step_seconds = 1;
      p.plan.predicted.job_seconds = 30 + (reserved ? penalty : 0);
      return p;
    };
  };
  double cpu_seconds = 0;
  for (const auto& p : encoders.placements_for(plans(0)(0).plan, inventory)) {
    EXPECT_EQ(p.where, partition::EncoderWhere::cpu) << "no room kept on the GPU";
    cpu_seconds += p.seconds_per_job;
  }
  ASSERT_GT(cpu_seconds, 1.0);
  const PlanWithEncoders cheap = plan_with_encoders(encoders, plans(0.1));
  EXPECT_GT(cheap.reserved_bytes, 0u) << cheap.why;
  for (const auto& p : cheap.placements) EXPECT_NE(p.where, partition::EncoderWhere::cpu) << p.why;
  const PlanWithEncoders dear = plan_with_encoders(encoders, plans(cpu_seconds + 1));
  EXPECT_EQ(dear.reserved_bytes, 0u) << dear.why;
}

}  // namespace
}  // namespace ditrun::launcher
