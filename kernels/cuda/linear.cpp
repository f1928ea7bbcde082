#include "kernels/cuda/linear.h"

#include <spdlog/spdlog.h>

#include "kernels/cuda/dequantize.h"
#include "kernels/cuda/fp8_quantize.h"
#include "kernels/cuda/kernel_checks.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cuda {
namespace {

using cuda_plan::Epilogue;
using cuda_plan::GemmKey;
using cuda_plan::GemmPath;
using cuda_plan::ScaleMode;

ScaleMode weight_scale_mode(GemmPath path) {
  switch (path) {
    case GemmPath::Fp8Row: return ScaleMode::OuterVec32F;
    case GemmPath::Fp8Block128: return ScaleMode::Vec128_32F;
    default: return ScaleMode::Scalar32F;
  }
}

Epilogue epilogue_for(bool bias, bool gelu) {
  if (bias) return gelu ? Epilogue::BiasGelu : Epilogue::Bias;
  return gelu ? Epilogue::Gelu : Epilogue::None;
}

uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

LinearOp::LinearOp(const LinearOptions& options) : options_(options), gemm_(options.gemm_workspace_bytes) {}

cuda_plan::GemmChoice LinearOp::path_for(const Weight& w, DType activation) const {
  return cuda_plan::choose_gemm_path(w, activation == DType::F32, options_.caps, options_.fp8_gemm);
}

void LinearOp::run(const Tensor& x, const WeightRef& w, const ParamRef* bias, bool gelu, Tensor& y, Scratch& scratch,
                   cudaStream_t stream) {
  constexpr std::string_view op = "linear";
  if (!w.source || !w.bytes) fail("linear: a weight without device bytes");
  const Weight& src = *w.source;
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "y", y);
  detail::check_same_dtype(op, x, y);
  const int64_t m = src.rows(), k = src.cols();
  if (x.cols() != k || y.cols() != m || x.batch() != y.batch() || x.rows() != y.rows())
    fail("linear '{}' {}: x {} and y {} do not fit it (need [.., {}] -> [.., {}])", src.name, shape_string(src.shape),
         shape_string(x.shape()), shape_string(y.shape()), k, m);
  if (!src.unsupported.empty()) fail("linear '{}': {}", src.name, src.unsupported);
  if (bias) detail::check_param(op, "bias", *bias, m);
  const int64_t batch = x.batch(), rows = x.rows(), tokens = batch * rows;
  if (tokens == 0 || m == 0) return;
  if (k == 0) fail("linear '{}': a weight without columns", src.name);
  const DType act = x.dtype();
  const size_t act_bytes = act == DType::F32 ? 4 : 2;

  // The bias in the output's type (the epilogue reads D's type); bf16 mode rounds it as the
  // CPU backend does.
  const void* bias_ptr = nullptr;
  if (bias) {
    if (bias->dtype == act) {
      bias_ptr = bias->data;
    } else {
      void* converted = scratch.get(ScratchUse::Bias, size_t(m) * act_bytes);
      convert_param(*bias, converted, act, stream);
      bias_ptr = converted;
    }
  }
  const bool uniform = batch == 1 || (x.batch_stride() == rows * x.row_stride() && y.batch_stride() == rows * y.row_stride());
  GemmPath path = path_for(src, act).path;

  // fp8: quantize x, multiply the stored codes; a call the fp8 GEMM cannot take decodes instead.
  if (path == GemmPath::Fp8Tensor || path == GemmPath::Fp8Row || path == GemmPath::Fp8Block128) {
    const ScaleMode mode = weight_scale_mode(path);
    auto* codes = static_cast<uint8_t*>(scratch.get(ScratchUse::QuantizedInput, size_t(tokens * k)));
    GemmKey key{path, DType::F8_E4M3, DType::F8_E4M3, act, m, tokens, k, k, k, y.row_stride(),
                epilogue_for(bias, gelu), mode, mode,
                cuda_plan::common_alignment({address(w.bytes), address(codes), address(y.data()), address(bias_ptr)})};
    std::string why = uniform ? cuda_plan::fp8_shape_problem(key) : "batch items are not evenly spaced";
    bool separate_gelu = false;
    if (why.empty() && !gemm_.supported(key, &why) && gelu) {
      key.epilogue = epilogue_for(bias, false);
      separate_gelu = gemm_.supported(key, &why);
    }
    if (why.empty() || separate_gelu) {
      const int64_t scale_count = mode == ScaleMode::Scalar32F ? 1
                                  : mode == ScaleMode::OuterVec32F ? tokens
                                                                   : tokens * ((k + 127) / 128);
      auto* scales_b = static_cast<float*>(scratch.get(ScratchUse::InputScales, size_t(scale_count) * 4));
      void* amax = scratch.get(ScratchUse::Fp8Amax, kFp8ScratchBytes);
      const std::optional<float> static_scale =
          path == GemmPath::Fp8Tensor ? src.input_scale : std::optional<float>();
      quantize_fp8(x, codes, scales_b, mode, static_scale, amax, stream);
      GemmOperands o{w.bytes, codes, y.data(), bias_ptr, w.a_scales, scales_b};
      gemm_.run(key, o, scratch.get(ScratchUse::GemmWorkspace, gemm_.workspace_bytes()), stream);
      if (separate_gelu) gelu_tanh(y, y, stream);
      return;
    }
    spdlog::debug("linear '{}': fp8 GEMM not used for this call ({}); decoding to bf16", src.name, why);
    path = GemmPath::DequantBf16;
  }

  // f32 / bf16: the weight as stored when the GEMM reads that type, else decoded into scratch.
  const DType a_type = path == GemmPath::F32 ? DType::F32 : DType::BF16;
  const void* a = w.bytes;
  const bool stored_as_is = src.scale_layout == ScaleLayout::None && src.storage == a_type;
  if (!stored_as_is) {
    void* decoded = scratch.get(ScratchUse::DecodedWeight, size_t(m * k) * act_bytes);
    dequantize(w, decoded, a_type, stream);
    a = decoded;
  }
  auto one = [&](const void* b, void* d, int64_t n) {
    GemmKey key{path == GemmPath::F32 ? GemmPath::F32 : GemmPath::Bf16, a_type, act, act, m, n, k, k, x.row_stride(),
                y.row_stride(), epilogue_for(bias, gelu), ScaleMode::Scalar32F, ScaleMode::Scalar32F,
                cuda_plan::common_alignment({address(a), address(b), address(d), address(bias_ptr)})};
    bool separate_gelu = false;
    std::string why;
    if (gelu && !gemm_.supported(key, &why)) {
      key.epilogue = epilogue_for(bias, false);
      separate_gelu = true;
    }
    GemmOperands o{a, b, d, bias_ptr, nullptr, nullptr};
    gemm_.run(key, o, scratch.get(ScratchUse::GemmWorkspace, gemm_.workspace_bytes()), stream);
    return separate_gelu;
  };
  bool separate_gelu = false;
  if (uniform) {
    separate_gelu = one(x.data(), y.data(), tokens);
  } else {
    for (int64_t b = 0; b < batch; ++b)
      separate_gelu = one(static_cast<const uint8_t*>(x.data()) + b * x.batch_stride() * int64_t(act_bytes),
                          static_cast<uint8_t*>(y.data()) + b * y.batch_stride() * int64_t(act_bytes), rows);
  }
  if (separate_gelu) gelu_tanh(y, y, stream);
}

}  // namespace ditrun::kernels::cuda
