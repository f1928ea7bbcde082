// The default negative prompt of Wan's releases: `sample_neg_prompt` in Wan-Video's
// wan/configs/shared_config.py, which every Wan 2.1 task's config takes (Wan 2.2's carries
// the same text). A guided Wan job without a negative prompt is conditioned on it, as
// Wan's generate.py does.
#pragma once

namespace ditrun::models::text {

inline constexpr const char* kWanDefaultNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

}  // namespace ditrun::models::text
