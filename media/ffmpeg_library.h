// FFmpeg's libraries opened at run time: the functions the MP4 writer calls, resolved from
// the library majors the build's headers name (libavformat.so.59, ...), so the types are the
// headers' own. A machine without FFmpeg runs everything but MP4 output, which then fails
// saying which library is missing and which Debian package provides it.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace ditrun::media {

struct FfmpegLibrary {
#define DITRUN_FFMPEG_FN(name) decltype(&::name) name = nullptr;
#include "media/ffmpeg_functions.inc"
#undef DITRUN_FFMPEG_FN
};

// The process's one table, loaded on first use; fails (ditrun::Error) naming the library or
// symbol that could not be found.
const FfmpegLibrary& ffmpeg();

}  // namespace ditrun::media
