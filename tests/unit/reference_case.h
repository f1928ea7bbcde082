// A reference case of ../shared/testdata/reference opened for running: the checkpoint (bf16
// safetensors or a GGUF variant), its config sidecar, the network, a CPU backend and the
// weights loaded on it, and the case's io tensors.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "models/pipeline/model_source.h"
#include "runtime/backend/backend.h"
#include "runtime/exec/model.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::test {

struct ReferenceCase {
  // name: "flux-tiny-dev"; variant: "" (bf16 safetensors) or "Q8_0", "Q4_K", "Q5_0".
  ReferenceCase(const std::string& name, const std::string& variant,
                runtime::Precision precision = runtime::Precision::F32);
  // The same case on another backend (the GPU tests run it on CUDA).
  ReferenceCase(const std::string& name, const std::string& variant, std::unique_ptr<runtime::Backend> backend);

  models::ModelSource source;
  std::unique_ptr<runtime::Model> network;
  std::unique_ptr<runtime::Backend> backend;
  std::unique_ptr<runtime::WeightStore> weights;
  runtime::HostTensors io;  // every tensor of CASE[-VARIANT].io.safetensors, by full name
};

// A VAE case (flux-ae-tiny, wan21-vae-tiny, wan22-vae-tiny) decoded and encoded on
// `backend`: every output and intermediate under its io name (the whole-sequence pass), the
// frame-by-frame decode as `decode.chunked`, beside the io file's tensors.
struct VaeCaseRun {
  std::map<std::string, HostTensor> outputs;
  runtime::HostTensors io;
};
VaeCaseRun run_vae_case(const std::string& name, runtime::Backend& backend);

// Item b of a batched tensor, without the batch dim (one job's share of a reference batch).
HostTensor batch_item(const HostTensor& t, int64_t b);
// The model inputs of an io file: its `in.*` tensors with the prefix dropped.
runtime::HostTensors reference_inputs(const runtime::HostTensors& io);
// gtest parameter label: '-' and other punctuation become '_'.
std::string test_label(std::string s);

// max |a − b| over all elements; fails the test (and returns +inf) when shapes differ.
double max_abs_diff(const HostTensor& a, const HostTensor& b);

}  // namespace ditrun::test
