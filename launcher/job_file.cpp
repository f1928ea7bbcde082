#include "launcher/job_file.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/sampling/comfy_schedules.h"
#include "runtime/sampling/sampler.h"

namespace ditrun::launcher {
namespace {

using nlohmann::json;

constexpr const char* kKnownKeys =
    "id, prompt, negative_prompt, cond, width, height, frames, seed, noise, steps, sampler, scheduler, shift, guidance, cfg, "
    "cfg_high, cfg_low, boundary, config, output, fps, image, denoise";
const std::set<std::string, std::less<>> kKeys{"id",    "cond",  "width",   "height", "frames",   "seed", "noise",
                                               "steps", "sampler", "scheduler", "shift", "guidance", "cfg", "cfg_high", "cfg_low", "boundary", "config",
                                               "output", "fps", "image", "denoise", "prompt",
                                               "negative_prompt"};

// Bounds that catch mistakes (a size in latent units, an extra digit) rather than limits of
// the runtime: no model is trained near them.
constexpr int64_t kMaxPixels = 16384, kMaxFrames = 10000, kMaxSteps = 10000;

// Ids and keys come from the user and are echoed in one-line errors: show control and
// non-ASCII bytes as \xNN so an error can never span lines.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) out += (c >= 0x20 && c < 0x7F) ? std::string(1, char(c)) : fmt::format("\\x{:02X}", c);
  return out;
}

std::string type_name(const json& v) { return v.is_null() ? "null" : v.type_name(); }

std::string get_string(const json& v, std::string_view key) {
  if (!v.is_string()) fail("{}: must be a string, got {}", key, type_name(v));
  return v.get<std::string>();
}

int64_t get_int(const json& v, std::string_view key) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) fail("{}: {} is too large", key, u);
    return int64_t(u);
  }
  if (!v.is_number_integer()) fail("{}: must be an integer, got {}", key, v.is_number() ? v.dump() : type_name(v));
  return v.get<int64_t>();
}

double get_number(const json& v, std::string_view key) {
  if (!v.is_number()) fail("{}: must be a number, got {}", key, type_name(v));
  return v.get<double>();
}

std::string resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty()) return path;  // validate_job reports it
  const std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

Job job_from_json(const json& j, const std::string& base_dir) {
  Job job;
  for (const auto& [key, v] : j.items()) {
    if (!kKeys.contains(key)) fail("unknown key '{}' (known keys: {})", printable(key), kKnownKeys);
    if (key == "id") job.id = get_string(v, key);
    else if (key == "cond") job.cond = resolve(get_string(v, key), base_dir);
    else if (key == "prompt") job.prompt = get_string(v, key);
    else if (key == "negative_prompt") job.negative_prompt = get_string(v, key);
    else if (key == "width") job.width = get_int(v, key);
    else if (key == "height") job.height = get_int(v, key);
    else if (key == "frames") job.frames = get_int(v, key);
    else if (key == "seed") {
      if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)
        fail("seed: must be an integer >= 0, got {}", v.dump());
      if (!v.is_number_unsigned() && !v.is_number_integer())
        fail("seed: must be an integer >= 0, got {}", v.is_number() ? v.dump() : type_name(v));
      job.seed = v.get<uint64_t>();
    } else if (key == "noise") job.noise = resolve(get_string(v, key), base_dir);
    else if (key == "steps") job.steps = get_int(v, key);
    else if (key == "sampler") job.sampler = get_string(v, key);
    else if (key == "scheduler") job.scheduler = get_string(v, key);
    else if (key == "shift") {
      if (v.is_number()) job.shift = runtime::Shift::constant(v.get<double>());
      else if (v.is_string()) job.shift = runtime::Shift::parse(v.get<std::string>());
      else fail("shift: must be a number, \"none\", \"flux-dynamic\" or \"qwen-dynamic\", got {}", type_name(v));
    } else if (key == "guidance") job.guidance = get_number(v, key);
    else if (key == "cfg") job.cfg = get_number(v, key);
    else if (key == "cfg_high") job.cfg_high = get_number(v, key);
    else if (key == "cfg_low") job.cfg_low = get_number(v, key);
    else if (key == "boundary") job.boundary = get_number(v, key);
    else if (key == "config") job.config = resolve(get_string(v, key), base_dir);
    else if (key == "output") job.output = get_string(v, key);
    else if (key == "fps") job.fps = get_number(v, key);
    else if (key == "image") job.image = resolve(get_string(v, key), base_dir);
    else if (key == "denoise") job.denoise = get_number(v, key);
  }
  return job;
}

// nlohmann's messages start "[json.exception.parse_error.101] parse error at line 1, ...";
// a job is one line, so keep only the column and what was wrong.
std::string json_error_text(const json::exception& e) {
  std::string s = e.what();
  if (const size_t close = s.find("] "); s.starts_with("[json.exception") && close != std::string::npos)
    s = s.substr(close + 2);
  if (const size_t at = s.find("at line 1, column"); at != std::string::npos) s.replace(at, 17, "at column");
  return s;
}

}  // namespace

json parse_strict_object(std::string_view text) {
  std::set<std::string> keys;
  std::string repeated;
  const json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second &&
        repeated.empty())
      repeated = parsed.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(text, note_keys);
  } catch (const json::exception& e) {
    fail("not valid JSON: {}", json_error_text(e));
  }
  if (!j.is_object()) fail("a job must be a JSON object, got {}", type_name(j));
  if (!repeated.empty()) fail("key '{}' given twice", printable(repeated));
  return j;
}

Job parse_job_object(const json& object, const std::string& base_dir) {
  if (!object.is_object()) fail("a job must be a JSON object, got {}", type_name(object));
  Job job = job_from_json(object, base_dir);
  validate_job(job);
  return job;
}

json job_to_json(const Job& job) {
  json j;
  j["id"] = job.id;
  if (job.prompt) j["prompt"] = *job.prompt;
  if (job.negative_prompt) j["negative_prompt"] = *job.negative_prompt;
  if (!job.cond.empty()) j["cond"] = job.cond;
  if (job.width) j["width"] = *job.width;
  if (job.height) j["height"] = *job.height;
  if (job.frames) j["frames"] = *job.frames;
  if (job.seed) j["seed"] = *job.seed;
  if (job.noise) j["noise"] = *job.noise;
  if (job.steps) j["steps"] = *job.steps;
  if (job.sampler) j["sampler"] = *job.sampler;
  if (job.scheduler) j["scheduler"] = *job.scheduler;
  if (job.shift) {
    if (job.shift->kind == runtime::Shift::Constant) j["shift"] = job.shift->value;
    else j["shift"] = job.shift->str();
  }
  if (job.guidance) j["guidance"] = *job.guidance;
  if (job.cfg) j["cfg"] = *job.cfg;
  if (job.cfg_high) j["cfg_high"] = *job.cfg_high;
  if (job.cfg_low) j["cfg_low"] = *job.cfg_low;
  if (job.boundary) j["boundary"] = *job.boundary;
  if (job.config) j["config"] = *job.config;
  if (job.output) j["output"] = *job.output;
  if (job.fps) j["fps"] = *job.fps;
  if (job.image) j["image"] = *job.image;
  if (job.denoise) j["denoise"] = *job.denoise;
  return j;
}

void validate_job(const Job& job) {
  if (job.id.empty()) fail("id: missing (every job needs an id; it names the output files)");
  for (char c : job.id) {
    const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                         c == '_' || c == '-';
    if (!allowed)
      fail("id: character '{}' not allowed; ids use only A-Z a-z 0-9 . _ - since they name files",
           printable(std::string_view(&c, 1)));
  }
  if (job.id.front() == '.') fail("id: must not start with '.' (it names files)");
  if (job.id.size() > 200) fail("id: {} characters; at most 200", job.id.size());
  // An empty prompt is a prompt (its tokens are the end token alone).
  if (job.cond.empty() && !job.prompt) fail("prompt or cond: one is needed (a prompt, or a conditioning safetensors file)");
  if (!job.cond.empty() && job.prompt) fail("prompt and cond: give one, not both");
  if (job.negative_prompt && !job.prompt)
    fail("negative_prompt: goes with a prompt (a cond file holds its own context_neg)");

  if (job.seed && job.noise) fail("seed and noise: give one, not both");
  if (!job.seed && !job.noise) fail("seed or noise: one is needed (a seed >= 0 or a noise file)");
  if (job.noise && job.noise->empty()) fail("noise: empty path");
  if (job.width.has_value() != job.height.has_value()) fail("width and height: give both or neither");
  if (!job.width && !job.noise && !job.image)
    fail("width and height: missing (needed unless a noise file or an image fixes the size)");
  const auto check_range = [](const std::optional<int64_t>& v, std::string_view key, int64_t max) {
    if (v && (*v < 1 || *v > max)) fail("{}: must be an integer from 1 to {}, got {}", key, max, *v);
  };
  check_range(job.width, "width", kMaxPixels);
  check_range(job.height, "height", kMaxPixels);
  check_range(job.frames, "frames", kMaxFrames);
  check_range(job.steps, "steps", kMaxSteps);

  if (job.sampler && !runtime::sampler_from_name(*job.sampler))
    fail("sampler: '{}' is not available (available: {})", printable(*job.sampler), runtime::kSamplerNames);
  if (job.scheduler && *job.scheduler != "model" && !runtime::comfy_scheduler_from_name(*job.scheduler))
    fail("scheduler: '{}' is not available (available: model, simple, normal, beta, sgm_uniform)", printable(*job.scheduler));
  if (job.shift && job.shift->kind == runtime::Shift::Constant)
    runtime::Shift::constant(job.shift->value);  // a Job built from flags gets the same check as parse
  if (job.guidance && (!std::isfinite(*job.guidance) || *job.guidance < 0))
    fail("guidance: must be a number >= 0, got {}", *job.guidance);
  for (const auto& [cfg, key] : {std::pair{job.cfg, "cfg"}, {job.cfg_high, "cfg_high"}, {job.cfg_low, "cfg_low"}})
    if (cfg && (!std::isfinite(*cfg) || *cfg < 0)) fail("{}: must be a number >= 0 (1 = off), got {}", key, *cfg);
  if (job.boundary && !(std::isfinite(*job.boundary) && *job.boundary > 0 && *job.boundary < 1))
    fail("boundary: must be in (0, 1) (a fraction of the 1000 training timesteps, 0.875 for Wan 2.2 T2V-A14B), got {}",
         *job.boundary);
  if (job.config && job.config->empty()) fail("config: empty path");
  if (job.output && *job.output != "png" && *job.output != "mp4" && *job.output != "latent")
    fail("output: '{}' is not png, mp4 or latent", printable(*job.output));
  if (job.fps && (!std::isfinite(*job.fps) || *job.fps <= 0 || *job.fps > 240))
    fail("fps: must be a number in (0, 240], got {}", *job.fps);
  if (job.image && job.image->empty()) fail("image: empty path");
  if (job.denoise && (!std::isfinite(*job.denoise) || *job.denoise <= 0 || *job.denoise > 1))
    fail("denoise: must be a number in (0, 1], got {}", *job.denoise);
  if (job.denoise && !job.image) fail("denoise: needs an image to start from");
}

std::vector<JobLine> parse_job_text(std::string_view text, const std::string& source, const std::string& base_dir) {
  std::vector<JobLine> out;
  std::map<std::string, int> first_line_of_id;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // UTF-8 byte order mark
    if (line.ends_with('\r')) line.remove_suffix(1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;

    JobLine result;
    result.line = line_no;
    try {
      json j;
      try {
        j = parse_strict_object(line);
      } catch (const Error&) {
        // The id still names the line's job in the error, when the JSON gives one.
        if (const json loose = json::parse(line, nullptr, false); loose.is_object())
          if (const auto id = loose.find("id"); id != loose.end() && id->is_string()) result.id = id->get<std::string>();
        throw;
      }
      if (const auto id = j.find("id"); id != j.end() && id->is_string()) result.id = id->get<std::string>();
      Job job = job_from_json(j, base_dir);
      job.line = line_no;
      validate_job(job);
      if (const auto [it, inserted] = first_line_of_id.emplace(job.id, line_no); !inserted)
        fail("duplicate id (first used on line {})", it->second);
      result.job = std::move(job);
    } catch (const Error& e) {
      // Ids of invalid lines still count as taken: the user meant that line to be that job.
      if (!result.id.empty()) first_line_of_id.emplace(result.id, line_no);
      result.error = result.id.empty() ? fmt::format("{}:{}: {}", source, line_no, e.what())
                                       : fmt::format("{}:{}: job '{}': {}", source, line_no, printable(result.id), e.what());
    }
    out.push_back(std::move(result));
  }
  return out;
}

std::vector<JobLine> parse_job_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the job file", path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("{}: cannot read the job file", path);
  return parse_job_text(text.str(), path, std::filesystem::path(path).parent_path().string());
}

}  // namespace ditrun::launcher
