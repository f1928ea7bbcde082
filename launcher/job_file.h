// Jobs for `ditrun run`: a `jobs.jsonl` file with one JSON object per line, or one job from
// command-line flags. Both produce the same Job and pass the same validate_job, so a job
// means the same thing however it was given.
//
// A job line (keys; all but id, prompt|cond and seed|noise optional, model defaults apply):
//   {"id": "cat-01",             unique in the file; [A-Za-z0-9._-], not starting with '.',
//                                since it names the job's output files
//    "prompt": "a red fox in snow",    encoded by the run's text encoders (text_encoders.h)
//    "negative_prompt": "blurry",      Wan's guided jobs (default: the release's)
//    "cond": "cond/cat.safetensors",   or conditioning tensors made elsewhere (`ditrun encode`)
//    "width": 1024, "height": 768,     pixels; both or neither (a noise file fixes the size)
//    "frames": 81,                     video models
//    "seed": 42  |  "noise": "n.safetensors",   exactly one
//    "steps": 28, "sampler": "euler" | "unipc" | "dpm++" (Wan's official solvers; default:
//                             unipc for Wan, euler for Flux) | "dpmpp_2m" | "uni_pc" |
//                             "uni_pc_bh2" (ComfyUI's),
//    "scheduler": "model" (default: the model's own schedule for the sampler) | "simple" |
//                 "normal" | "beta" | "sgm_uniform" (ComfyUI's),
//    "shift": 3.0 | "none" | "flux-dynamic" | "qwen-dynamic",
//    "guidance": 3.5, "cfg": 5.0 (1 = off),
//    "cfg_high": 4.0, "cfg_low": 3.0, "boundary": 0.875,   models of two experts (Wan 2.2
//                             A14B): each expert's cfg (default: cfg, else the release's),
//                             and the expert switch (high-noise while t >= boundary x 1000)
//    "config": "model.config.json"}
// Relative paths are relative to the job file's folder, so a folder of jobs and their
// inputs can move as a whole. Unknown and repeated keys are errors: a typo such as "stpes"
// must not silently fall back to a default. Empty lines and lines whose first non-blank
// character is '#' are skipped.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/sampling/schedule.h"

namespace ditrun::launcher {

struct Job {
  std::string id;
  std::optional<std::string> prompt, negative_prompt;
  std::string cond;  // path, resolved; empty for a job with a prompt
  std::optional<int64_t> width, height, frames;
  std::optional<uint64_t> seed;
  std::optional<std::string> noise;  // path, resolved
  std::optional<int64_t> steps;
  std::optional<std::string> sampler;  // none: the model's (unipc for Wan, as its official code; euler for Flux)
  std::optional<std::string> scheduler;  // none or "model": the model's own schedule
  std::optional<runtime::Shift> shift;
  std::optional<double> guidance;
  std::optional<double> cfg;
  std::optional<double> cfg_high, cfg_low, boundary;  // two-expert models only (prepare_job checks)
  std::optional<std::string> config;  // sidecar config path, resolved
  // With a VAE: png, mp4 or latent (default: png for one frame, mp4 for more); picture_output.h.
  std::optional<std::string> output;
  std::optional<double> fps;  // MP4 frame rate (default: the model's)
  // Image-to-video (Wan 2.2 I2V-A14B): a safetensors holding `y` [20, F, H, W], the mask and
  // image latent as the official code builds them (docs/commands.md); noise or seed as usual.
  // Image-to-image: a PNG encoded by the run's VAE as the starting latent, `denoise` in (0, 1]
  // of the schedule run from it (ComfyUI's: the last steps of a steps/denoise schedule).
  std::optional<std::string> image;  // path, resolved
  std::optional<double> denoise;
  int line = 0;                       // line in the job file; 0 for a job from flags
};

// Checks one job's values and the rules between them; fails with a one-line ditrun::Error
// saying what is wrong ("steps: must be an integer >= 1, got 0"), without file or job
// prefix, which the caller adds.
void validate_job(const Job& job);

// One job from a JSON object in the job line format, checked by validate_job; relative paths
// start at `base_dir`. Fails with one line, without file or job prefix.
Job parse_job_object(const nlohmann::json& object, const std::string& base_dir);

// The job line of `job` (paths as stored in the Job); parse_job_object gives the job back.
nlohmann::json job_to_json(const Job& job);

// JSON text that must be one object with no key given twice at its top level (a repeated key
// would silently keep only the last value). Fails with one line ("not valid JSON: ...",
// "key 'steps' given twice").
nlohmann::json parse_strict_object(std::string_view text);

// The outcome of one non-blank, non-comment line.
struct JobLine {
  int line = 0;
  std::string id;          // the job's id when the line gave one (even if invalid)
  std::optional<Job> job;  // set when the line is a valid job
  std::string error;       // otherwise "SOURCE:LINE: job 'ID': what is wrong" (no job part without an id)
  bool ok() const { return job.has_value(); }
};

// Parses job lines from `text`; `source` names the file in errors and `base_dir` is where
// relative paths start (empty: the current directory). One bad line never stops the others.
std::vector<JobLine> parse_job_text(std::string_view text, const std::string& source, const std::string& base_dir);

// Reads and parses a job file; fails (ditrun::Error) only if the file cannot be read.
std::vector<JobLine> parse_job_file(const std::string& path);

}  // namespace ditrun::launcher
