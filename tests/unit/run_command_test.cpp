// `ditrun run` end to end through the binary: a job file reproducing the Flux reference
// sample, a job that fails without stopping the others, ledger and --resume, atomic outputs
// (no temporary files left), the single-job flags on Wan, and the built-in default model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "launcher/ledger.h"
#include "media/pixels.h"
#include "media/png.h"
#include "models/vae/vae.h"
#include "models/vae/vae_source.h"
#include "models/vae/vae_synth.h"
#include "runtime/backend/cpu_backend.h"
#include <nlohmann/json.hpp>
#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

namespace fs = std::filesystem;

int run_ditrun(const std::string& args, const std::string& log) {
  const std::string cmd = ditrun_binary() + " --log-level warn run " + args + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RunCommand, JobFileReproducesReferenceAndRecordsFailures) {
  const std::string dir = temp_dir("run-jobs"), out = dir + "/out";
  const std::string base = testdata("reference/flux-tiny-dev");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor txt = batch_item(io.at("in.txt"), 1), y = batch_item(io.at("in.y"), 1), noise = batch_item(io.at("sample.noise"), 1);
  models::write_host_tensors(dir + "/cond.safetensors", {{"txt", &txt}, {"y", &y}});
  models::write_host_tensors(dir + "/noise.safetensors", {{"noise", &noise}});
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "ref1", "cond": "cond.safetensors", "noise": "noise.safetensors", "guidance": 3.5})" << "\n"
         << "# a comment line\n"
         << R"({"id": "nocond", "cond": "missing.safetensors", "seed": 1, "width": 64, "height": 64})" << "\n"
         << R"({"id": "typo", "cond": "cond.safetensors", "seed": 1, "width": 64, "height": 64, "stpes": 3})" << "\n";
  }
  const std::string args = base + ".safetensors --config " + base + ".config.json --jobs " + dir + "/jobs.jsonl --out " + out;
  EXPECT_EQ(run_ditrun(args, dir + "/log1"), 2) << slurp(dir + "/log1");

  const auto latent = models::read_host_tensors(out + "/ref1.safetensors");
  EXPECT_LT(max_abs_diff(latent.at("latent"), batch_item(io.at("sample.latent"), 1)), 1e-3);
  EXPECT_EQ(files_in(out), (std::set<std::string>{"ledger.jsonl", "ref1.safetensors", "ref1.png"}));

  auto ledger = launcher::read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 3u);
  EXPECT_TRUE(ledger.entries[0].done());
  EXPECT_EQ(ledger.entries[0].steps, 3);
  EXPECT_FALSE(ledger.entries[1].done());
  EXPECT_NE(ledger.entries[1].error.find("missing.safetensors"), std::string::npos) << ledger.entries[1].error;
  EXPECT_NE(ledger.entries[1].error.find("nocond"), std::string::npos) << ledger.entries[1].error;
  EXPECT_NE(ledger.entries[2].error.find("stpes"), std::string::npos) << ledger.entries[2].error;

  // --resume skips the finished job (its output untouched) and retries the failed ones.
  const auto written = fs::last_write_time(out + "/ref1.safetensors");
  EXPECT_EQ(run_ditrun(args + " --resume", dir + "/log2"), 2) << slurp(dir + "/log2");
  EXPECT_EQ(fs::last_write_time(out + "/ref1.safetensors"), written);
  ledger = launcher::read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 5u);
  EXPECT_EQ(ledger.entries[3].id, "nocond");
  EXPECT_EQ(ledger.entries[4].id, "typo");
}

TEST(RunCommand, SingleJobFlagsOnWanWithCfg) {
  const std::string dir = temp_dir("run-wan"), out = dir + "/out";
  const std::string base = testdata("reference/wan21-tiny-t2v");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor ctx = batch_item(io.at("in.context"), 0), neg = batch_item(io.at("in.context_neg"), 0);
  const HostTensor noise = batch_item(io.at("sample.noise"), 0);
  models::write_host_tensors(dir + "/cond.safetensors", {{"context", &ctx}, {"context_neg", &neg}});
  models::write_host_tensors(dir + "/noise.safetensors", {{"noise", &noise}});
  const std::string args = base + ".safetensors --config " + base + ".config.json --id w0 --cond " + dir +
                           "/cond.safetensors --noise " + dir + "/noise.safetensors --out " + out +
                           " --sampler euler";  // the reference case's loop (Wan's default is unipc)
  ASSERT_EQ(run_ditrun(args, dir + "/log"), 0) << slurp(dir + "/log");
  const auto latent = models::read_host_tensors(out + "/w0.safetensors");
  EXPECT_LT(max_abs_diff(latent.at("latent"), batch_item(io.at("sample.latent"), 0)), 1e-3);
  EXPECT_TRUE(fs::exists(out + "/w0.png"));
}

TEST(RunCommand, BuiltInModelRendersAPictureThroughItsVae) {
  const std::string dir = temp_dir("run-builtin"), out = dir + "/out";
  ASSERT_EQ(run_ditrun("--out " + out + " --steps 2 --width 64 --height 48 --seed 5", dir + "/log"), 0)
      << slurp(dir + "/log");
  EXPECT_EQ(files_in(out), (std::set<std::string>{"ledger.jsonl", "image.safetensors", "image.png"}));
  const auto latent = models::read_host_tensors(out + "/image.safetensors");
  EXPECT_EQ(latent.at("latent").shape, (Shape{16, 6, 8}));
  // The decoded picture: full size (the latent preview would be 8x6), with the job's parameters.
  const media::RgbImage png = media::read_png(out + "/image.png");
  EXPECT_EQ(png.width, 64);
  EXPECT_EQ(png.height, 48);
  ASSERT_FALSE(png.text.empty());
  EXPECT_EQ(png.text[0].first, "parameters");
  const auto parameters = nlohmann::json::parse(png.text[0].second);
  EXPECT_EQ(parameters.at("seed"), 5);
  EXPECT_EQ(parameters.at("steps"), 2);
  const auto ledger = launcher::read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 1u);
  EXPECT_EQ(ledger.entries[0].vae, "built-in flux-ae-tiny");
}

// The tiny Wan reference model with a synthetic tiny Wan 2.1 VAE: MP4s of the right frame
// count, size and rate (ffprobe), a job's own `fps` and `output`, and a preview on request.
TEST(RunCommand, WanWithAVaeWritesMp4sFfprobeReads) {
  const std::string dir = temp_dir("run-wan-mp4"), out = dir + "/out";
  const std::string base = testdata("reference/wan21-tiny-t2v");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor ctx = batch_item(io.at("in.context"), 0), neg = batch_item(io.at("in.context_neg"), 0);
  models::write_host_tensors(dir + "/cond.safetensors", {{"context", &ctx}, {"context_neg", &neg}});
  ASSERT_EQ(std::system((ditrun_binary() + " --log-level warn synth --arch wan21-vae --preset tiny --out " + dir +
                         "/vae.safetensors").c_str()),
            0);
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "clip", "cond": "cond.safetensors", "seed": 1, "width": 32, "height": 48, "frames": 9, "steps": 2})"
         << "\n"
         << R"({"id": "slow", "cond": "cond.safetensors", "seed": 2, "width": 32, "height": 32, "frames": 5, "steps": 2, "fps": 8})"
         << "\n"
         << R"({"id": "still", "cond": "cond.safetensors", "seed": 3, "width": 32, "height": 32, "frames": 5, "steps": 2, "output": "latent"})"
         << "\n";
  }
  const std::string args = base + ".safetensors --config " + base + ".config.json --jobs " + dir + "/jobs.jsonl --out " +
                           out + " --vae " + dir + "/vae.safetensors --preview";
  ASSERT_EQ(run_ditrun(args, dir + "/log"), 0) << slurp(dir + "/log");
  EXPECT_EQ(files_in(out), (std::set<std::string>{"ledger.jsonl", "clip.safetensors", "clip.mp4", "clip.preview.png",
                                                  "slow.safetensors", "slow.mp4", "slow.preview.png",
                                                  "still.safetensors", "still.preview.png"}));
  const auto probe = [&](const std::string& file) {
    const std::string cmd = "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
                            "stream=width,height,nb_read_frames,r_frame_rate -of csv=p=0 " + out + "/" + file + " > " +
                            dir + "/probe 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(dir + "/probe");
    std::string s = slurp(dir + "/probe");
    while (!s.empty() && (s.back() == '\n' || s.back() == ',')) s.pop_back();
    return s;
  };
  EXPECT_EQ(probe("clip.mp4"), "32,48,16/1,9");  // 3 latent frames: 1 + 4·2 frames at Wan 2.1's 16 fps
  EXPECT_EQ(probe("slow.mp4"), "32,32,8/1,5");
}

// Image-to-image: a PNG through the VAE's encoder, `denoise` running the last part of a longer
// schedule (ComfyUI's). A small denoise ends near the image's own latent; a full one does not.
TEST(RunCommand, ImageToImageStartsFromTheEncodedPicture) {
  const std::string dir = temp_dir("run-img2img"), out = dir + "/out";
  const std::string vae_path = dir + "/vae.safetensors";
  models::vae::write_synthetic_vae(models::vae::tiny_vae_preset("flux-ae-tiny"), 0, vae_path);
  std::vector<uint8_t> rgb(64 * 48 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((i % 192) + (i / 192) % 64);
  media::write_png_rgb(dir + "/in.png", rgb, 64, 48);
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "light", "cond": "cond.safetensors", "seed": 4, "steps": 2, "image": "in.png", "denoise": 0.05})" << "\n"
         << R"({"id": "full", "cond": "cond.safetensors", "seed": 4, "steps": 2, "image": "in.png"})" << "\n"
         << R"({"id": "odd", "cond": "cond.safetensors", "seed": 4, "steps": 2, "image": "odd.png"})" << "\n";
  }
  media::write_png_rgb(dir + "/odd.png", std::vector<uint8_t>(60 * 40 * 3, 100), 60, 40);
  // The tiny reference Flux with one of its conditionings.
  const std::string base = testdata("reference/flux-tiny-dev");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor txt = batch_item(io.at("in.txt"), 0), y = batch_item(io.at("in.y"), 0);
  models::write_host_tensors(dir + "/cond.safetensors", {{"txt", &txt}, {"y", &y}});
  const std::string args = base + ".safetensors --config " + base + ".config.json --jobs " + dir + "/jobs.jsonl --out " +
                           out + " --vae " + vae_path;
  EXPECT_EQ(run_ditrun(args, dir + "/log"), 2) << slurp(dir + "/log");
  const auto ledger = launcher::read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 3u);
  EXPECT_TRUE(ledger.entries[0].done()) << ledger.entries[0].error;
  EXPECT_TRUE(ledger.entries[1].done()) << ledger.entries[1].error;
  EXPECT_NE(ledger.entries[2].error.find("odd.png"), std::string::npos) << ledger.entries[2].error;
  EXPECT_NE(ledger.entries[2].error.find("multiples of 16"), std::string::npos) << ledger.entries[2].error;

  // The image's own latent, encoded here with the same VAE.
  const auto src = models::vae::open_vae(vae_path, std::nullopt);
  auto backend = runtime::make_cpu_backend({});
  auto vae = models::vae::make_vae(src.config, *backend, *src.weights, vae_path);
  HostTensor encoded = vae->encode(media::pixels_from_rgb8(rgb, 64, 48)).latent;
  encoded.shape.erase(encoded.shape.begin());
  const double near = max_abs_diff(models::read_host_tensors(out + "/light.safetensors").at("latent"), encoded);
  const double far = max_abs_diff(models::read_host_tensors(out + "/full.safetensors").at("latent"), encoded);
  EXPECT_LT(near, 0.25 * far) << "denoise 0.05: " << near << ", denoise 1: " << far;
  const auto parameters = nlohmann::json::parse(media::read_png(out + "/light.png").text.at(0).second);
  EXPECT_LT(parameters.at("sigma_start").get<double>(), 0.15);
}

TEST(RunCommand, VaeProblemsFailTheJobsAndKeepLatents) {
  const std::string dir = temp_dir("run-vae-bad"), out = dir + "/out";
  // A VAE of another model: every job fails, naming the job and the VAE, and nothing is written.
  ASSERT_EQ(std::system((ditrun_binary() + " --log-level warn synth --arch wan21-vae --preset tiny --out " + dir +
                         "/wan-vae.safetensors").c_str()),
            0);
  EXPECT_EQ(run_ditrun("--out " + out + " --steps 2 --width 64 --height 64 --vae " + dir + "/wan-vae.safetensors",
                       dir + "/log1"),
            2);
  auto ledger = launcher::read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 1u);
  EXPECT_NE(ledger.entries[0].error.find("job 'image'"), std::string::npos) << ledger.entries[0].error;
  EXPECT_NE(ledger.entries[0].error.find("wan-vae.safetensors"), std::string::npos) << ledger.entries[0].error;
  EXPECT_EQ(files_in(out), (std::set<std::string>{"ledger.jsonl"}));

  // A corrupt VAE file: the same, with the file named.
  {
    std::ifstream in(dir + "/wan-vae.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir + "/cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  EXPECT_EQ(run_ditrun("--out " + dir + "/out2 --steps 2 --width 64 --height 64 --vae " + dir + "/cut.safetensors",
                       dir + "/log2"),
            2);
  EXPECT_NE(slurp(dir + "/log2").find("cut.safetensors"), std::string::npos) << slurp(dir + "/log2");

  // The picture cannot be written (its name is taken by a folder): the job fails saying how to
  // finish it, the latent stays; `ditrun decode` finishes it and --resume then skips it.
  const std::string out3 = dir + "/out3";
  fs::create_directories(out3 + "/image.png");
  EXPECT_EQ(run_ditrun("--out " + out3 + " --steps 2 --width 64 --height 64", dir + "/log3"), 2) << slurp(dir + "/log3");
  ledger = launcher::read_ledger(out3);
  ASSERT_EQ(ledger.entries.size(), 1u);
  EXPECT_FALSE(ledger.entries[0].done());
  EXPECT_NE(ledger.entries[0].error.find("ditrun decode"), std::string::npos) << ledger.entries[0].error;
  EXPECT_TRUE(fs::exists(out3 + "/image.safetensors"));
  fs::remove(out3 + "/image.png");
  ASSERT_EQ(std::system((ditrun_binary() + " synth --arch flux-ae --preset tiny --out " + dir + "/vae.safetensors > " +
                         dir + "/log4 2>&1 && " + ditrun_binary() + " decode " + dir + "/vae.safetensors " + out3 +
                         "/image.safetensors --out " + out3 + "/image.png >> " + dir + "/log4 2>&1").c_str()),
            0)
      << slurp(dir + "/log4");
  EXPECT_EQ(media::read_png(out3 + "/image.png").width, 64);
  ledger = launcher::read_ledger(out3);
  ASSERT_EQ(ledger.entries.size(), 2u);
  EXPECT_TRUE(ledger.entries[1].done());
  const auto written = fs::last_write_time(out3 + "/image.png");
  EXPECT_EQ(run_ditrun("--out " + out3 + " --steps 2 --width 64 --height 64 --resume", dir + "/log5"), 0)
      << slurp(dir + "/log5");
  EXPECT_EQ(fs::last_write_time(out3 + "/image.png"), written);

  // The same failure finished by --resume: the latent is decoded, not rendered again.
  const std::string out4 = dir + "/out4";
  fs::create_directories(out4 + "/image.png");
  EXPECT_EQ(run_ditrun("--out " + out4 + " --steps 2 --width 64 --height 64", dir + "/log6"), 2) << slurp(dir + "/log6");
  fs::remove(out4 + "/image.png");
  const auto latent_written = fs::last_write_time(out4 + "/image.safetensors");
  EXPECT_EQ(run_ditrun("--out " + out4 + " --steps 2 --width 64 --height 64 --resume", dir + "/log7"), 0)
      << slurp(dir + "/log7");
  EXPECT_EQ(fs::last_write_time(out4 + "/image.safetensors"), latent_written);
  EXPECT_EQ(media::read_png(out4 + "/image.png").width, 64);
  ledger = launcher::read_ledger(out4);
  ASSERT_EQ(ledger.entries.size(), 2u);
  EXPECT_TRUE(ledger.entries[1].done());
  EXPECT_EQ(ledger.entries[1].steps, 0) << "decoded, not sampled";
  EXPECT_EQ(ledger.entries[1].vae, "built-in flux-ae-tiny");
}

TEST(RunCommand, BadFlagsFailWithOneLine) {
  const std::string dir = temp_dir("run-bad");
  EXPECT_EQ(run_ditrun("--out " + dir + "/out --steps 0", dir + "/log"), 2);
  EXPECT_NE(slurp(dir + "/log").find("steps"), std::string::npos) << slurp(dir + "/log");
  EXPECT_EQ(run_ditrun(testdata("reference/flux-tiny-dev.safetensors") + " --out " + dir + "/o2", dir + "/log2"), 2);
  EXPECT_NE(slurp(dir + "/log2").find("--cond"), std::string::npos) << slurp(dir + "/log2");
}

}  // namespace
}  // namespace ditrun::test
