// H.264 MP4 files through FFmpeg (libx264 where FFmpeg has it, else its H.264 encoder):
// yuv420p, CRF 19 (visually lossless for generated video, as ComfyUI's video nodes default
// to), the job's parameters in the container's `comment` tag. Written atomically: FFmpeg
// writes a temporary file beside the target, renamed when the trailer is written.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ditrun::media {

struct Mp4Options {
  double fps = 16;
  int crf = 19;
  std::string comment;  // stored as the `comment` metadata tag
};

// frames: each height rows of width·3 bytes (RGB). Width and height must be even (yuv420p).
// Fails (ditrun::Error naming `path`) on bad sizes, a missing FFmpeg, or an encoder error,
// leaving nothing at `path`.
void write_mp4_rgb(const std::string& path, const std::vector<std::vector<uint8_t>>& frames, int width, int height,
                   const Mp4Options& options = {});

}  // namespace ditrun::media
