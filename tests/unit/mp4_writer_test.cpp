// The MP4 writer, read back by ffprobe (Debian's ffmpeg package, an independent reader):
// codec, size, frame count and frame rate; and its refusals, which leave no file behind.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "media/mp4_writer.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun {
namespace {

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  return out;
}

std::vector<std::vector<uint8_t>> moving_gradient(int frames, int width, int height) {
  std::vector<std::vector<uint8_t>> out;
  for (int f = 0; f < frames; ++f) {
    std::vector<uint8_t> rgb(size_t(width) * height * 3);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        uint8_t* p = &rgb[size_t(y * width + x) * 3];
        p[0] = uint8_t((x + 4 * f) * 4), p[1] = uint8_t(y * 5), p[2] = uint8_t(128 + f * 8);
      }
    out.push_back(std::move(rgb));
  }
  return out;
}

TEST(Mp4Writer, FfprobeReadsCodecSizeFramesAndRate) {
  const std::string path = test::temp_dir("mp4") + "/clip.mp4";
  media::write_mp4_rgb(path, moving_gradient(17, 64, 48), 64, 48, {.fps = 16, .comment = "{\"seed\": 1}"});
  const std::string probe =
      run("ffprobe -v error -count_frames -select_streams v:0 -show_entries "
          "stream=codec_name,width,height,nb_read_frames,r_frame_rate -of default=noprint_wrappers=1 '" + path + "'");
  EXPECT_NE(probe.find("codec_name=h264"), std::string::npos) << probe;
  EXPECT_NE(probe.find("width=64"), std::string::npos) << probe;
  EXPECT_NE(probe.find("height=48"), std::string::npos) << probe;
  EXPECT_NE(probe.find("nb_read_frames=17"), std::string::npos) << probe;
  EXPECT_NE(probe.find("r_frame_rate=16/1"), std::string::npos) << probe;
  const std::string tags = run("ffprobe -v error -show_entries format_tags=comment -of default=noprint_wrappers=1 '" + path + "'");
  EXPECT_NE(tags.find("seed"), std::string::npos) << tags;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(e.path().filename(), "clip.mp4") << "a temporary file was left behind";
}

TEST(Mp4Writer, RefusesBadInputAndLeavesNothing) {
  const std::string dir = test::temp_dir("mp4-bad");
  EXPECT_THROW(media::write_mp4_rgb(dir + "/odd.mp4", moving_gradient(2, 63, 48), 63, 48), Error);
  EXPECT_THROW(media::write_mp4_rgb(dir + "/none.mp4", {}, 64, 48), Error);
  EXPECT_THROW(media::write_mp4_rgb(dir + "/short.mp4", moving_gradient(2, 64, 48), 64, 50), Error);
  EXPECT_THROW(media::write_mp4_rgb(dir + "/missing-dir/x.mp4", moving_gradient(2, 64, 48), 64, 48), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

}  // namespace
}  // namespace ditrun
