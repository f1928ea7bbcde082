#include "media/ffmpeg_library.h"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <vector>

#include "runtime/core/error.h"

namespace ditrun::media {
namespace {

#define DITRUN_STR2(x) #x
#define DITRUN_STR(x) DITRUN_STR2(x)

struct Library {
  const char* soname;
  const char* package;
};
// Each library by the major its headers were built for (the ABI the table's types describe).
const Library kLibraries[] = {
    {"libavutil.so." DITRUN_STR(LIBAVUTIL_VERSION_MAJOR), "libavutil"},
    {"libavcodec.so." DITRUN_STR(LIBAVCODEC_VERSION_MAJOR), "libavcodec"},
    {"libavformat.so." DITRUN_STR(LIBAVFORMAT_VERSION_MAJOR), "libavformat"},
    {"libswscale.so." DITRUN_STR(LIBSWSCALE_VERSION_MAJOR), "libswscale"},
};

FfmpegLibrary load() {
  std::vector<void*> handles;
  for (const Library& lib : kLibraries) {
    void* h = dlopen(lib.soname, RTLD_NOW | RTLD_GLOBAL);
    if (!h)
      fail("MP4 output needs FFmpeg's {} ({}: install the Debian package {}{}): {}", lib.package, lib.soname,
           lib.package, std::string(lib.soname).substr(std::string(lib.soname).find(".so.") + 4), dlerror());
    handles.push_back(h);
  }
  FfmpegLibrary f;
  // Symbols are looked up in every library opened (RTLD_GLOBAL lets dlsym on any find them).
  const auto resolve = [&](const char* name) -> void* {
    for (void* h : handles)
      if (void* p = dlsym(h, name)) return p;
    fail("MP4 output: FFmpeg has no function {} (a library of another version?)", name);
  };
#define DITRUN_FFMPEG_FN(name) f.name = reinterpret_cast<decltype(&::name)>(resolve(#name));
#include "media/ffmpeg_functions.inc"
#undef DITRUN_FFMPEG_FN
  f.av_log_set_level(AV_LOG_ERROR);
  return f;
}

}  // namespace

const FfmpegLibrary& ffmpeg() {
  static std::once_flag once;
  static FfmpegLibrary library;
  static std::string error;
  std::call_once(once, [] {
    try {
      library = load();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) fail("{}", error);
  return library;
}

}  // namespace ditrun::media
