// A rank's place in its group, from the plan: a group is the ranks that render one job
// together, its stages form a pipeline (partition/plan.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "partition/plan.h"

namespace ditrun::runtime {

struct GroupPosition {
  int group = 0, stage = 0, stages = 1;
  int leader = 0;      // rank of stage 0's primary
  int previous = -1;   // rank of stage - 1's primary (-1 for the leader)
  int next = -1;       // rank of stage + 1's primary (-1 for the last stage)
  int last = 0;        // rank of the last stage's primary
  int coordinator = 0;
  // The ranks that share this stage's step (partition/plan.h), in share order: team[0] is the
  // primary; team.size() == sequence_parallel * cfg_parallel.
  int share = 0;
  std::vector<int> team;
  int sequence_parallel = 1, cfg_parallel = 1;
  int sequence_ring = 0;  // the plan's (0: chosen by the head count)
  bool is_primary() const { return share == 0; }
  bool is_leader() const { return stage == 0 && is_primary(); }
  bool is_last() const { return stage == stages - 1 && is_primary(); }
};

// Fails naming the rank counts when the plan was made for another number of ranks.
GroupPosition group_position(const partition::Plan& plan, int rank, int ranks);

// Each group's leader and how its ranks read in messages: "rank 1", "ranks 2-3".
std::map<int, std::string> group_names(const partition::Plan& plan);

}  // namespace ditrun::runtime
