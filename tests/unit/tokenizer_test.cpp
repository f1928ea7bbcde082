// The tokenizers against ../shared/testdata/tokenizers: the real CLIP-L and T5 vocabularies
// and a tiny SentencePiece model, with the ids independent implementations give (openai's
// simple_tokenizer for CLIP; sentencepiece and Hugging Face's tokenizers for T5 and the tiny
// model). CLIP's four `ftfy_sensitive` lines are skipped: ftfy would rewrite their text first
// (the README there explains).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "models/formats/safetensors.h"
#include "models/text/tokenizer.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::models::text {
namespace {

std::vector<nlohmann::json> expected(const std::string& name) {
  std::ifstream in(test::testdata("tokenizers/" + name));
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  EXPECT_FALSE(lines.empty()) << name;
  return lines;
}

TEST(Tokenizer, ClipLMatchesOpenaiOnEveryLine) {
  const auto tok = open_tokenizer(test::testdata("tokenizers/clip-l"));
  int compared = 0;
  for (const auto& line : expected("clip-l.expected.jsonl")) {
    if (line.value("ftfy_sensitive", false)) continue;
    const std::string text = line.at("text");
    const auto ids = tok->encode(text);
    EXPECT_EQ(ids, line.at("ids").get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(tok->fit(ids, 77), line.at("ids_77").get<std::vector<int64_t>>()) << text;
    ++compared;
  }
  EXPECT_EQ(compared, 38);
}

TEST(Tokenizer, T5FromTokenizerJsonMatchesEveryLine) {
  const auto tok = open_tokenizer(test::testdata("tokenizers/t5/tokenizer.json"));
  for (const auto& line : expected("t5.expected.jsonl"))
    EXPECT_EQ(tok->encode(line.at("text")), line.at("ids").get<std::vector<int64_t>>()) << line.at("text");
}

TEST(Tokenizer, SentencePieceModelMatchesEveryLine) {
  const auto tok = open_tokenizer(test::testdata("tokenizers/spm-tiny/spm.model"));
  for (const auto& line : expected("spm-tiny.expected.jsonl"))
    EXPECT_EQ(tok->encode(line.at("text")), line.at("ids").get<std::vector<int64_t>>()) << line.at("text");
}

// ComfyUI's umT5 checkpoints carry their SentencePiece model as a uint8 tensor `spiece_model`.
TEST(Tokenizer, SentencePieceModelEmbeddedInACheckpoint) {
  std::ifstream in(test::testdata("tokenizers/spm-tiny/spm.model"), std::ios::binary);
  const std::vector<uint8_t> model((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = test::temp_dir("tokenizer-embedded") + "/umt5.safetensors";
  formats::SafetensorsWriter writer(path, {{"spiece_model", DType::U8, {int64_t(model.size())}}});
  writer.write_next(model);
  writer.finish();
  const auto tok = open_tokenizer(path);
  for (const auto& line : expected("spm-tiny.expected.jsonl"))
    EXPECT_EQ(tok->encode(line.at("text")), line.at("ids").get<std::vector<int64_t>>()) << line.at("text");
  EXPECT_THROW(open_tokenizer(test::testdata("reference/flux-tiny-dev.safetensors")), Error);  // no spiece_model
}

TEST(Tokenizer, FitPadsAndTruncatesAsTheModelsConsume) {
  const auto t5 = open_tokenizer(test::testdata("tokenizers/t5"));
  const std::vector<int64_t> ids = t5->encode("a photo of a cat");  // 7 tokens + </s>
  bool truncated = true;
  const auto padded = t5->fit(ids, 12, &truncated);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(padded, (std::vector<int64_t>{3, 9, 1202, 13, 3, 9, 1712, 1, 0, 0, 0, 0}));
  const auto cut = t5->fit(ids, 4, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(cut, (std::vector<int64_t>{3, 9, 1202, 1}));
}

TEST(Tokenizer, BadFilesFailWithOneLine) {
  const std::string dir = test::temp_dir("tokenizer-bad");
  std::ofstream(dir + "/tokenizer.json") << "{not json";
  std::ofstream(dir + "/junk.model") << "definitely not a model proto";
  for (const std::string& path : {dir + "/tokenizer.json", dir + "/junk.model", dir + "/missing.model", dir}) {
    try {
      open_tokenizer(path);
      ADD_FAILURE() << path << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ditrun::models::text
