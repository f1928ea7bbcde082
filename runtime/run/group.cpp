#include "runtime/run/group.h"

#include <fmt/format.h>

#include "runtime/core/error.h"

namespace ditrun::runtime {

GroupPosition group_position(const partition::Plan& plan, int rank, int ranks) {
  if (int(plan.ranks.size()) != ranks)
    fail("the plan has {} rank(s) but the run has {} (start it with mpirun -np {})", plan.ranks.size(), ranks,
         plan.ranks.size());
  const partition::RankPlan& me = plan.ranks[size_t(rank)];
  GroupPosition pos;
  pos.group = me.group;
  pos.stage = me.stage;
  pos.share = me.share;
  pos.sequence_parallel = plan.sequence_parallel;
  pos.cfg_parallel = plan.cfg_parallel;
  pos.sequence_ring = plan.sequence_ring;
  pos.stages = 0;
  // The pipeline runs between the stages' primaries (share 0).
  for (const auto& r : plan.ranks) {
    if (r.group != me.group) continue;
    if (r.stage == me.stage) pos.team.push_back(r.rank);
    if (r.share != 0) continue;
    ++pos.stages;
    if (r.stage == 0) pos.leader = r.rank;
    if (r.stage == me.stage - 1) pos.previous = r.rank;
    if (r.stage == me.stage + 1) pos.next = r.rank;
  }
  for (const auto& r : plan.ranks)
    if (r.group == me.group && r.share == 0 && r.stage == pos.stages - 1) pos.last = r.rank;
  return pos;
}

std::map<int, std::string> group_names(const partition::Plan& plan) {
  std::map<int, std::string> names;
  for (int g = 0; g < plan.group_count(); ++g) {
    std::vector<int> members;
    for (const auto& r : plan.ranks)
      if (r.group == g) members.push_back(r.rank);
    names[members.front()] = members.size() == 1 ? fmt::format("rank {}", members.front())
                                                 : fmt::format("ranks {}-{}", members.front(), members.back());
  }
  return names;
}

}  // namespace ditrun::runtime
