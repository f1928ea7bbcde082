// `ditrun tokenize --tokenizer PATH [--json] [--max-length N] TEXT...`: the ids a prompt
// becomes (models/text/tokenizer.h), one line per text: ids separated by spaces, or with
// --json one object per line, {"text": ..., "ids": [...]} (the raw ids: CLIP start + tokens
// + end, T5 tokens + </s>) and, with --max-length N, "ids_N": the padded or truncated form
// the model consumes. Texts come after the options (`--` ends them, so a text may start with -).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "launcher/commands.h"
#include "models/text/tokenizer.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "The token ids of prompts (CLIP BPE, T5/umT5 SentencePiece)");
  static std::string tokenizer;
  static std::vector<std::string> texts;
  static bool json = false;
  static std::optional<int64_t> max_length;
  cmd->add_option("--tokenizer", tokenizer,
                  "A folder (vocab.json + merges.txt, or tokenizer.json), a tokenizer.json, a SentencePiece .model, "
                  "or a checkpoint with an embedded spiece_model")
      ->required();
  cmd->add_flag("--json", json, "One JSON object per text");
  cmd->add_option("--max-length", max_length, "Also the ids padded or truncated to N, as the model consumes them")
      ->check(CLI::PositiveNumber);
  cmd->add_option("texts", texts, "Prompts (after --, a prompt may start with -)");
  cmd->callback([] {
    const auto tok = models::text::open_tokenizer(tokenizer);
    for (const std::string& text : texts) {
      const std::vector<int64_t> ids = tok->encode(text);
      if (json) {
        nlohmann::ordered_json j{{"text", text}, {"ids", ids}};
        if (max_length) j[fmt::format("ids_{}", *max_length)] = tok->fit(ids, *max_length);
        fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        fmt::print("{}\n", fmt::join(max_length ? tok->fit(ids, *max_length) : ids, " "));
      }
    }
  });
}

}  // namespace ditrun::launcher
