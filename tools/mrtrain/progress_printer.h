#pragma once

#include <cstdio>

#include "runtime/master/training_loop.h"

namespace mrtrain::tools {

// Shows training progress: on a terminal, a bar redrawn in place every few rounds with the
// epoch line printed under it when an epoch ends; otherwise (a pipe, a log file) only one
// line per epoch, so logs stay readable.
class ProgressPrinter : public runtime::TrainingObserver {
 public:
  ProgressPrinter(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}

  void OnRound(int64_t epoch, int64_t round, int64_t rounds_per_epoch, int64_t total_epochs,
               double elapsed_sec) override;
  void OnEpoch(const runtime::EpochReport& report) override;

 private:
  std::FILE* out_;
  bool interactive_;
  double last_draw_ = -1;
};

}  // namespace mrtrain::tools
