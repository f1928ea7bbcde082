// Stage states device to device on the CUDA backend: the message protocol of
// put_state_on_link / take_state_from_link (names, shapes, dtype, integers; transfer stream
// ordered after compute on the sender and before compute on the receiver) through a loopback
// link that copies device to device, and NCCL itself on the one GPU a check machine has: a
// one-rank communicator sending to itself (two ranks on one GPU are refused by NCCL 2.28).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstring>
#include <deque>

#include "gpu_test_support.h"
#include "kernels/cuda/cuda_check.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec/state_message.h"
#if DITRUN_HAVE_NCCL
#include "transport/nccl_channel.h"
#endif

namespace ditrun::test {
namespace {

using kernels::cuda::check_cuda;

// A "peer" that is this process: recv copies what the matching send named, on the stream.
class LoopbackLink final : public transport::DeviceLink {
 public:
  std::string name() const override { return "loopback"; }
  void send(const void* ptr, size_t bytes, int, void*) override { queued_.push_back({ptr, bytes}); }
  void recv(void* ptr, size_t bytes, int, void* stream) override {
    ASSERT_FALSE(queued_.empty());
    ASSERT_EQ(queued_.front().second, bytes);
    check_cuda(cudaMemcpyAsync(ptr, queued_.front().first, bytes, cudaMemcpyDeviceToDevice,
                               static_cast<cudaStream_t>(stream)),
               "loopback copy");
    queued_.pop_front();
  }
  void all_to_all(const void*, void*, size_t, std::span<const int>, void*) override {
    FAIL() << "the loopback link has no collectives";
  }
  void all_gather(const void*, void*, size_t, std::span<const int>, void*) override {
    FAIL() << "the loopback link has no collectives";
  }

 private:
  std::deque<std::pair<const void*, size_t>> queued_;
};

TEST(DeviceTransfer, StateCrossesALinkBitForBit) {
  DITRUN_REQUIRE_GPU();
  runtime::CudaBackendOptions o;
  o.arena_bytes = 256 << 20;
  auto sender = runtime::make_cuda_backend(o), receiver = runtime::make_cuda_backend(o);
  const auto x = random_values(2 * 40 * 64, 1), vec = random_values(2 * 64, 2);
  runtime::ActivationState state;
  Tensor tx = sender->empty({2, 40, 64});
  sender->upload(x, tx, sender->compute_stream());
  Tensor wide = sender->empty({2, 1, 128});
  sender->upload(random_values(2 * 128, 3), wide, sender->compute_stream());
  state.set("x", tx);
  state.set("vec", wide.slice_cols(32, 64));  // a view: sent as a packed copy
  state.set_int("txt_len", 7);
  LoopbackLink link;
  transport::TensorMessage m;
  runtime::PendingSend pending =
      runtime::put_state_on_link(*sender, state, m, link, 1, sender->create_stream());
  ASSERT_TRUE(runtime::has_device_state(m));
  runtime::ActivationState got = runtime::take_state_from_link(*receiver, m, link, 0, receiver->create_stream());
  EXPECT_EQ(got.integer("txt_len"), 7);
  auto host = [&](runtime::Backend& be, const Tensor& t) {
    std::vector<float> v(size_t(t.numel()));
    be.download(t, v, be.compute_stream());
    return v;
  };
  EXPECT_EQ(host(*receiver, got.at("x")), host(*sender, tx));
  EXPECT_EQ(host(*receiver, got.at("vec")), host(*sender, wide.slice_cols(32, 64)));
  sender->synchronize(sender->compute_stream());
  EXPECT_TRUE(sender->event_complete(pending.done));
}

#if DITRUN_HAVE_NCCL
TEST(DeviceTransfer, NcclOneRankSendsToItself) {
  DITRUN_REQUIRE_GPU();
  transport::NcclComm comm(0);
  constexpr size_t bytes = 1 << 20;
  std::vector<uint8_t> pattern(bytes);
  for (size_t i = 0; i < bytes; ++i) pattern[i] = uint8_t(i * 7 + 3);
  void *from = nullptr, *to = nullptr;
  check_cuda(cudaMalloc(&from, bytes), "malloc");
  check_cuda(cudaMalloc(&to, bytes), "malloc");
  check_cuda(cudaMemcpy(from, pattern.data(), bytes, cudaMemcpyHostToDevice), "upload");
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "stream");
  comm.send_recv(from, bytes, 0, to, bytes, 0, stream);
  check_cuda(cudaStreamSynchronize(stream), "NCCL self exchange");
  std::vector<uint8_t> back(bytes);
  check_cuda(cudaMemcpy(back.data(), to, bytes, cudaMemcpyDeviceToHost), "download");
  EXPECT_EQ(back, pattern);
  cudaStreamDestroy(stream);
  cudaFree(from);
  cudaFree(to);
}

// The sequence-parallel exchange's collectives on a group of one: each is a copy to itself.
TEST(DeviceTransfer, NcclOneRankCollectivesCopyToItself) {
  DITRUN_REQUIRE_GPU();
  transport::NcclComm comm(0);
  constexpr size_t bytes = 1 << 16;
  std::vector<uint8_t> pattern(bytes);
  for (size_t i = 0; i < bytes; ++i) pattern[i] = uint8_t(i * 13 + 5);
  void *from = nullptr, *to = nullptr;
  check_cuda(cudaMalloc(&from, bytes), "malloc");
  check_cuda(cudaMalloc(&to, bytes), "malloc");
  check_cuda(cudaMemcpy(from, pattern.data(), bytes, cudaMemcpyHostToDevice), "upload");
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "stream");
  const int members[] = {0};
  for (int round = 0; round < 2; ++round) {
    check_cuda(cudaMemset(to, 0, bytes), "clear");
    if (round == 0) comm.all_to_all(from, to, bytes, members, stream);
    else comm.all_gather(from, to, bytes, members, stream);
    check_cuda(cudaStreamSynchronize(stream), round == 0 ? "NCCL all-to-all" : "NCCL all-gather");
    std::vector<uint8_t> back(bytes);
    check_cuda(cudaMemcpy(back.data(), to, bytes, cudaMemcpyDeviceToHost), "download");
    EXPECT_EQ(back, pattern) << (round == 0 ? "all-to-all" : "all-gather");
  }
  cudaStreamDestroy(stream);
  cudaFree(from);
  cudaFree(to);
}
#endif

}  // namespace
}  // namespace ditrun::test
