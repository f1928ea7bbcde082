#include "shared_call.h"

#include <thread>

#include "reference_case.h"
#include "runtime/exec/stage.h"
#include "transport/local_channel.h"
#include "transport/rank_group.h"

namespace ditrun::test {

std::string SharedCallResult::first_error() const {
  for (size_t r = 0; r < errors.size(); ++r)
    if (!errors[r].empty()) return "rank " + std::to_string(r) + ": " + errors[r];
  return "";
}

SharedCallResult shared_reference_call(const std::string& model, int sp, int cfg, int ring, const runtime::HostTensors& inputs,
                                 const std::function<std::unique_ptr<runtime::Backend>()>& make_backend) {
  const int ranks = sp * cfg;
  auto channels = transport::make_local_channels(ranks);
  SharedCallResult result;
  result.errors.resize(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        ReferenceCase rc(model, "", make_backend());
        const int c = r / sp, s = r % sp;
        std::vector<int> tokens, items;
        for (int i = 0; i < sp; ++i) tokens.push_back(c * sp + i);
        for (int i = 0; i < cfg; ++i) items.push_back(i * sp + s);
        transport::RankGroup token_group(*channels[size_t(r)], tokens, 31), item_group(*channels[size_t(r)], items, 32);
        runtime::SequenceParallel sequence(token_group, ring);
        runtime::BatchParallel batch(item_group);
        runtime::JobSplit split;
        if (sp > 1) split.sequence = &sequence;
        if (cfg > 1) split.batch = &batch;
        const runtime::UnitRange all{0, rc.network->blocks().size() + 2};
        runtime::StageOutput o = runtime::run_stage(*rc.backend, *rc.network, *rc.weights, all, &inputs, {}, {}, split);
        if (o.shared != (r == 0) || o.output.has_value() != (r == 0))
          result.errors[size_t(r)] = "the rank that goes on after the call should be rank 0 alone";
        if (r == 0 && o.output) result.output = *o.output;
      } catch (const std::exception& e) {
        result.errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return result;
}

}  // namespace ditrun::test
