#include "partition/group_solver.h"

#include <algorithm>

namespace ditrun::partition::detail {

void DeviceClass::tabulate(const std::vector<double>& compute) {
  const size_t n = compute.size();
  core.assign((n + 1) * (n + 1), kInf);
  for (size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (size_t j = i + 1; j <= n; ++j) {
      sum += compute[j - 1];
      const RangeFit& fit = fits->at(i, j);
      if (usable && fit.feasible) core[i * (n + 1) + j] = std::max(sum, host_to_device_seconds(fit.streamed_bytes, throughput));
    }
  }
}

std::vector<DeviceClass> make_classes(const std::vector<uint64_t>& weights, const std::vector<ComputeDevice>& gpus,
                                      uint64_t activation_bytes, int slots) {
  std::vector<DeviceClass> classes;
  for (size_t g = 0; g < gpus.size(); ++g) {
    if (gpus[g].budget_bytes == 0) continue;
    auto same = std::find_if(classes.begin(), classes.end(), [&](const DeviceClass& c) {
      return c.budget == gpus[g].budget_bytes && c.throughput == gpus[g].throughput;
    });
    if (same == classes.end()) {
      classes.push_back({gpus[g].throughput, gpus[g].budget_bytes, gpus[g].budget_bytes >= activation_bytes, {}, nullptr, {}});
      same = classes.end() - 1;
    }
    same->members.push_back(g);
  }
  for (auto& c : classes) c.fits = std::make_unique<StageFits>(weights, c.usable ? c.budget - activation_bytes : 0, slots);
  return classes;
}

std::vector<std::vector<int>> class_sequences(const std::vector<DeviceClass>& classes, size_t max_len, bool& complete) {
  std::vector<std::vector<int>> out;
  std::vector<int> current;
  std::vector<size_t> left;
  for (const auto& c : classes) left.push_back(c.members.size());
  bool sorted_only = false;
  auto grow = [&](auto&& self) -> bool {
    if (!current.empty()) {
      out.push_back(current);
      if (!sorted_only && out.size() > kMaxSequences) return false;
    }
    if (current.size() == max_len) return true;
    for (size_t c = sorted_only && !current.empty() ? static_cast<size_t>(current.back()) : 0; c < classes.size(); ++c) {
      if (left[c] == 0) continue;
      --left[c];
      current.push_back(static_cast<int>(c));
      const bool ok = self(self);
      current.pop_back();
      ++left[c];
      if (!ok) return false;
    }
    return true;
  };
  complete = grow(grow);
  if (!complete) {
    out.clear();
    sorted_only = true;
    grow(grow);
  }
  return out;
}

SequenceSolver::SequenceSolver(const ModelCost& model, const std::vector<DeviceClass>& classes,
                               const std::vector<int>& sequence)
    : classes_(classes), seq_(sequence), n_(model.blocks.size()), stages_(sequence.size()),
      boundary_(stages_, std::vector<double>(n_ + 1, 0.0)) {
  if (stages_ > 1)
    for (size_t s = 0; s < stages_; ++s)
      for (size_t j = 1; j <= n_; ++j)
        boundary_[s][j] = device_to_device_seconds(model.blocks[j - 1].activation_bytes, classes_[seq_[s]].throughput,
                                                   classes_[seq_[(s + 1) % stages_]].throughput);
}

double SequenceSolver::min_max_stage() const {
  std::vector<double> prev(n_ + 1, kInf), next(n_ + 1, kInf);
  prev[0] = 0;
  for (size_t s = 1; s <= stages_; ++s) {
    std::fill(next.begin(), next.end(), kInf);
    for (size_t j = s; j + (stages_ - s) <= n_; ++j)
      for (size_t i = s - 1; i < j; ++i)
        if (prev[i] < kInf) next[j] = std::min(next[j], std::max(prev[i], stage_seconds(s - 1, i, j)));
    prev.swap(next);
  }
  return prev[n_];
}

uint64_t SequenceSolver::min_pinned(double tau, std::vector<size_t>* cuts) const {
  std::vector<std::vector<uint64_t>> best(stages_ + 1, std::vector<uint64_t>(n_ + 1, kNoFit));
  std::vector<std::vector<size_t>> from(stages_ + 1, std::vector<size_t>(n_ + 1, 0));
  best[0][0] = 0;
  for (size_t s = 1; s <= stages_; ++s) {
    const StageFits& fits = *classes_[seq_[s - 1]].fits;
    for (size_t j = s; j + (stages_ - s) <= n_; ++j) {
      for (size_t i = s - 1; i < j; ++i) {
        if (best[s - 1][i] == kNoFit) continue;
        if (const double t = stage_seconds(s - 1, i, j); t == kInf || t > tau) continue;
        const uint64_t pinned = best[s - 1][i] + fits.at(i, j).streamed_bytes;
        if (pinned < best[s][j]) {
          best[s][j] = pinned;
          from[s][j] = i;
        }
      }
    }
  }
  if (cuts && best[stages_][n_] != kNoFit) {
    cuts->assign(stages_ + 1, 0);
    (*cuts)[stages_] = n_;
    for (size_t s = stages_; s > 0; --s) (*cuts)[s - 1] = from[s][(*cuts)[s]];
  }
  return best[stages_][n_];
}

GroupSolution SequenceSolver::solve(uint64_t host_budget, int micro_batches) const {
  GroupSolution out;
  if (stages_ > n_) return out;
  // The host budget rarely binds: try the unconstrained optimum first.
  double tau = min_max_stage();
  if (tau == kInf) return out;
  if (min_pinned(tau, nullptr) > host_budget) {
    // Feasibility only grows with tau: binary search the candidate stage times above it.
    std::vector<double> candidates;
    for (size_t s = 0; s < stages_; ++s)
      for (size_t i = s; i + (stages_ - s) <= n_; ++i)
        for (size_t j = i + 1; j + (stages_ - s - 1) <= n_; ++j)
          if (const double t = stage_seconds(s, i, j); t > tau && t < kInf) candidates.push_back(t);
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    if (candidates.empty() || min_pinned(candidates.back(), nullptr) > host_budget) return out;
    size_t lo = 0, hi = candidates.size() - 1;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (min_pinned(candidates[mid], nullptr) <= host_budget) hi = mid;
      else lo = mid + 1;
    }
    tau = candidates[lo];
  }
  out.feasible = true;
  out.pinned = min_pinned(tau, &out.cuts);
  out.max_stage = tau;
  const double m = micro_batches;
  out.step = (m + static_cast<double>(stages_) - 1) / m * out.max_stage;
  return out;
}

}  // namespace ditrun::partition::detail
