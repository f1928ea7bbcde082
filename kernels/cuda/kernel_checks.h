// Argument checks of the CUDA launchers, each failure one line naming the op and the shapes
// (the same wording as the CPU kernels' checks, so errors read alike on both backends).
// Defined in a .cpp file: the .cu files that call them must not include fmt (cuda_check.h).
#pragma once

#include <string_view>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/weight_ref.h"

namespace ditrun::kernels::cuda::detail {

// A defined device tensor in an activation dtype (F32 or BF16).
void check_device_activation(std::string_view op, std::string_view role, const Tensor& t);
// Same batch, rows and cols.
bool same_layout(const Tensor& a, const Tensor& b);
void check_same_layout(std::string_view op, std::string_view role_a, const Tensor& a, std::string_view role_b,
                       const Tensor& b);
// Both in the same dtype (kernels are instantiated per activation type, not per pair).
void check_same_dtype(std::string_view op, const Tensor& a, const Tensor& b);
// mod [B or 1, n, C] has row `chunk` for a tensor of `batch` items and C columns.
void check_mod(std::string_view op, const Tensor& mod, int chunk, int64_t batch, int64_t cols);
// A parameter of `count` values in a storage type the kernels read.
void check_param(std::string_view op, std::string_view role, const ParamRef& p, int64_t count);
// The ParamRef::kind code device_common.cuh's Param reads.
uint8_t param_kind(DType dtype);

// Op-specific checks.
void check_add_operands(const Tensor& a, const Tensor& b);                // b's batch may be 1
void check_rms_norm_group(const Tensor& x, int64_t group);               // group divides the width
void check_rope(const Tensor& x, const Tensor& table, int64_t heads);     // even heads, table [B or 1, L, D]
void check_dequantize(const WeightRef& w, int64_t row_begin, int64_t row_end, const void* out, DType out_dtype);
void check_output_dtype(std::string_view op, DType dtype);               // F32 or BF16
// The VAEs' ops (conv_ops.h).
[[noreturn]] void fail_conv_patches(const Tensor& x, const Tensor& patches, int64_t p0, int64_t k);
void check_group_count(const Tensor& x, int64_t groups);                          // groups divide the channels
void check_same_channels(std::string_view op, const Tensor& x, const Tensor& y);
void check_channel_ratio(std::string_view op, int64_t numerator, int64_t denominator);  // a whole ratio
[[noreturn]] void fail_no_device_decoder(const Weight& w);
void check_fp8_static_scale(float scale, bool per_tensor);

}  // namespace ditrun::kernels::cuda::detail
