#include "media/mp4_writer.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "media/ffmpeg_library.h"
#include "runtime/core/error.h"

namespace ditrun::media {
namespace {

std::string av_error(const FfmpegLibrary& f, int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  f.av_strerror(code, buf, sizeof buf);
  return buf;
}

// Every FFmpeg object of one file, released in reverse order whatever happens.
struct Encoder {
  const FfmpegLibrary& f;
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  std::string temp_path;
  bool renamed = false;

  explicit Encoder(const FfmpegLibrary& lib) : f(lib) {}
  ~Encoder() {
    if (sws) f.sws_freeContext(sws);
    if (packet) f.av_packet_free(&packet);
    if (frame) f.av_frame_free(&frame);
    if (codec) f.avcodec_free_context(&codec);
    if (format) {
      if (format->pb) f.avio_closep(&format->pb);
      f.avformat_free_context(format);
    }
    if (!renamed && !temp_path.empty()) std::remove(temp_path.c_str());
  }
};

}  // namespace

void write_mp4_rgb(const std::string& path, const std::vector<std::vector<uint8_t>>& frames, int width, int height,
                   const Mp4Options& options) {
  if (frames.empty()) fail("{}: a video needs at least one frame", path);
  if (width < 2 || height < 2 || width % 2 || height % 2)
    fail("{}: H.264 in yuv420p needs an even width and height, not {}x{}", path, width, height);
  if (!(options.fps > 0)) fail("{}: frame rate {} is not positive", path, options.fps);
  for (const auto& rgb : frames)
    if (rgb.size() != size_t(width) * size_t(height) * 3)
      fail("{}: a frame of {} bytes is not {}x{} RGB", path, rgb.size(), width, height);

  const FfmpegLibrary& f = ffmpeg();
  Encoder e(f);
  e.temp_path = path + ".tmp." + std::to_string(::getpid());
  const auto check = [&](int rc, const char* what) {
    if (rc < 0) fail("{}: {}: {}", path, what, av_error(f, rc));
  };
  check(f.avformat_alloc_output_context2(&e.format, nullptr, "mp4", e.temp_path.c_str()), "MP4 muxer");
  const AVCodec* h264 = f.avcodec_find_encoder_by_name("libx264");
  if (!h264) h264 = f.avcodec_find_encoder(AV_CODEC_ID_H264);
  if (!h264) fail("{}: this FFmpeg has no H.264 encoder", path);
  AVStream* stream = f.avformat_new_stream(e.format, nullptr);
  e.codec = f.avcodec_alloc_context3(h264);
  if (!stream || !e.codec) fail("{}: FFmpeg could not allocate the stream", path);

  // fps as a rational: 16 → 16/1, 23.976 → 24000/1001-style via a 1000 denominator.
  const AVRational rate = std::fabs(options.fps - std::round(options.fps)) < 1e-9
                              ? AVRational{int(std::lround(options.fps)), 1}
                              : AVRational{int(std::lround(options.fps * 1000)), 1000};
  e.codec->width = width;
  e.codec->height = height;
  e.codec->pix_fmt = AV_PIX_FMT_YUV420P;
  e.codec->time_base = AVRational{rate.den, rate.num};
  e.codec->framerate = rate;
  e.codec->gop_size = 2 * int(std::ceil(options.fps));
  if (e.format->oformat->flags & AVFMT_GLOBALHEADER) e.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  f.av_opt_set(e.codec->priv_data, "crf", std::to_string(options.crf).c_str(), 0);
  f.av_opt_set(e.codec->priv_data, "preset", "medium", 0);
  check(f.avcodec_open2(e.codec, h264, nullptr), "open the H.264 encoder");
  check(f.avcodec_parameters_from_context(stream->codecpar, e.codec), "stream parameters");
  stream->time_base = e.codec->time_base;
  stream->avg_frame_rate = rate;
  if (!options.comment.empty()) f.av_dict_set(&e.format->metadata, "comment", options.comment.c_str(), 0);
  check(f.avio_open(&e.format->pb, e.temp_path.c_str(), AVIO_FLAG_WRITE), "create the file");
  check(f.avformat_write_header(e.format, nullptr), "write the header");

  e.frame = f.av_frame_alloc();
  e.packet = f.av_packet_alloc();
  if (!e.frame || !e.packet) fail("{}: FFmpeg could not allocate a frame", path);
  e.frame->format = AV_PIX_FMT_YUV420P;
  e.frame->width = width;
  e.frame->height = height;
  check(f.av_frame_get_buffer(e.frame, 0), "frame buffer");
  e.sws = f.sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr,
                           nullptr, nullptr);
  if (!e.sws) fail("{}: FFmpeg cannot convert RGB to yuv420p at {}x{}", path, width, height);

  const auto drain = [&] {
    for (;;) {
      const int rc = f.avcodec_receive_packet(e.codec, e.packet);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      check(rc, "encode");
      f.av_packet_rescale_ts(e.packet, e.codec->time_base, stream->time_base);
      e.packet->stream_index = stream->index;
      check(f.av_interleaved_write_frame(e.format, e.packet), "write a frame");
    }
  };
  for (size_t i = 0; i < frames.size(); ++i) {
    check(f.av_frame_make_writable(e.frame), "frame buffer");
    const uint8_t* src[1] = {frames[i].data()};
    const int src_stride[1] = {width * 3};
    f.sws_scale(e.sws, src, src_stride, 0, height, e.frame->data, e.frame->linesize);
    e.frame->pts = int64_t(i);
    check(f.avcodec_send_frame(e.codec, e.frame), "encode");
    drain();
  }
  check(f.avcodec_send_frame(e.codec, nullptr), "flush the encoder");
  drain();
  check(f.av_write_trailer(e.format), "write the trailer");
  f.avio_closep(&e.format->pb);
  if (std::rename(e.temp_path.c_str(), path.c_str()) != 0) fail("{}: cannot rename {} onto it", path, e.temp_path);
  e.renamed = true;
}

}  // namespace ditrun::media
