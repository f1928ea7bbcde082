#include "kernels/cuda/kernel_checks.h"

#include "runtime/core/error.h"

namespace ditrun::kernels::cuda::detail {

void check_device_activation(std::string_view op, std::string_view role, const Tensor& t) {
  if (!t.defined()) fail("{}: {} is not defined", op, role);
  if (t.device().kind != DeviceKind::Cuda) fail("{}: {} {} is not in device memory", op, role, t.describe());
  if (t.dtype() != DType::F32 && t.dtype() != DType::BF16)
    fail("{}: {} {} is not f32 or bf16", op, role, t.describe());
}

bool same_layout(const Tensor& a, const Tensor& b) {
  return a.batch() == b.batch() && a.rows() == b.rows() && a.cols() == b.cols();
}

void check_same_layout(std::string_view op, std::string_view role_a, const Tensor& a, std::string_view role_b,
                       const Tensor& b) {
  if (!same_layout(a, b))
    fail("{}: {} {} and {} {} differ in shape", op, role_a, shape_string(a.shape()), role_b, shape_string(b.shape()));
}

void check_same_dtype(std::string_view op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) fail("{}: {} and {} differ in dtype", op, a.describe(), b.describe());
}

void check_mod(std::string_view op, const Tensor& mod, int chunk, int64_t batch, int64_t cols) {
  if (mod.ndim() != 3 || mod.cols() != cols || (mod.batch() != batch && mod.batch() != 1) || chunk < 0 ||
      chunk >= mod.rows())
    fail("{}: mod {} has no chunk {} for {} items of width {} (need [{} or 1, >{}, {}])", op, shape_string(mod.shape()),
         chunk, batch, cols, batch, chunk, cols);
}

uint8_t param_kind(DType dtype) {
  switch (dtype) {
    case DType::F32: return 0;
    case DType::BF16: return 1;
    case DType::F16: return 2;
    default: fail("parameter in {}: the CUDA kernels read f32, bf16 or f16 parameters", dtype_name(dtype));
  }
}

void check_param(std::string_view op, std::string_view role, const ParamRef& p, int64_t count) {
  if (!p.data) fail("{}: {} has no device data", op, role);
  if (p.count != count) fail("{}: {} has {} values, {} needed", op, role, p.count, count);
  param_kind(p.dtype);
}

void check_add_operands(const Tensor& a, const Tensor& b) {
  if (b.rows() != a.rows() || b.cols() != a.cols() || (b.batch() != a.batch() && b.batch() != 1))
    fail("add: b {} does not match a {} (its batch may be 1)", shape_string(b.shape()), shape_string(a.shape()));
}

void check_rms_norm_group(const Tensor& x, int64_t group) {
  if (group <= 0 || x.cols() % group != 0)
    fail("rms_norm: group {} does not divide the {} columns of x {}", group, x.cols(), shape_string(x.shape()));
}

void check_rope(const Tensor& x, const Tensor& table, int64_t heads) {
  const int64_t c = x.cols();
  if (heads <= 0 || c % heads != 0 || (c / heads) % 2 != 0)
    fail("rope: x {} cannot be split into {} heads of an even width", shape_string(x.shape()), heads);
  const int64_t d = c / heads;
  if (table.cols() != d || table.rows() != x.rows() || (table.batch() != x.batch() && table.batch() != 1))
    fail("rope: table {} does not match x {} with {} heads (need [{} or 1, {}, {}])", shape_string(table.shape()),
         shape_string(x.shape()), heads, x.batch(), x.rows(), d);
}

void check_dequantize(const WeightRef& w, int64_t row_begin, int64_t row_end, const void* out, DType out_dtype) {
  if (!w.source || !w.bytes) fail("dequantize: a weight without device bytes");
  const Weight& src = *w.source;
  if (!src.unsupported.empty()) fail("dequantize '{}': {}", src.name, src.unsupported);
  if (row_begin < 0 || row_begin > row_end || row_end > src.rows())
    fail("dequantize '{}': rows [{}, {}) outside its {} rows", src.name, row_begin, row_end, src.rows());
  if (reinterpret_cast<uintptr_t>(out) % 32 != 0) fail("dequantize '{}': output not 32-byte aligned", src.name);
  if (out_dtype != DType::F32 && out_dtype != DType::BF16)
    fail("dequantize '{}': output {} is not f32 or bf16", src.name, dtype_name(out_dtype));
  if (src.scale_layout != ScaleLayout::None && !w.scales)
    fail("dequantize '{}': its scales are not in device memory", src.name);
  if (src.scale_layout == ScaleLayout::PerBlock && (src.scale_block <= 0 || src.cols() % src.scale_block != 0))
    fail("dequantize '{}': scale block {} does not divide its {} columns", src.name, src.scale_block, src.cols());
}

void check_output_dtype(std::string_view op, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16) fail("{}: output {} is not f32 or bf16", op, dtype_name(dtype));
}

void fail_no_device_decoder(const Weight& w) {
  fail("dequantize '{}': no CUDA decoder for {}", w.name, dtype_name(w.storage));
}

void check_fp8_static_scale(float scale, bool per_tensor) {
  if (!per_tensor || !(scale > 0.0f))
    fail("quantize_fp8: a static input scale ({}) needs a positive value and per-tensor scaling", scale);
}

void fail_conv_patches(const Tensor& x, const Tensor& patches, int64_t p0, int64_t k) {
  fail("conv3d: patches {} from position {} are not a contiguous [1, n, {}] tensor for x {}", patches.describe(), p0, k,
       x.describe());
}

void check_group_count(const Tensor& x, int64_t groups) {
  if (groups < 1 || x.cols() % groups != 0)
    fail("group_norm: {} groups do not divide the {} channels of {}", groups, x.cols(), x.describe());
}

void check_same_channels(std::string_view op, const Tensor& x, const Tensor& y) {
  if (x.cols() != y.cols()) fail("{}: x {} and y {} differ in channels", op, x.describe(), y.describe());
}

void check_channel_ratio(std::string_view op, int64_t numerator, int64_t denominator) {
  if (denominator < 1 || numerator % denominator != 0)
    fail("{}: {} folded channels are not a whole multiple of {}", op, numerator, denominator);
}

}  // namespace ditrun::kernels::cuda::detail
