#pragma once

#include <cstdint>

namespace mrtrain::updaters {

// How the learning rate changes over a job: the spec's update.learning_rate and
// update.schedule, validated by the spec parser (the defaults here are the spec's). Epochs and
// rounds count from 0; a round is one update of the parameters (ModelState::step counts them),
// and rounds_per_epoch of them make an epoch.
struct LearningRateSchedule {
  enum class Kind {
    kConstant,  // base throughout
    kStep,      // base * gamma^floor(epoch / step_epochs): drops by gamma every step_epochs
    kCosine,    // from base down to min_lr along half a cosine over all rounds of the job
  };
  Kind kind = Kind::kConstant;
  double base = 0.01;
  int64_t step_epochs = 1;  // kStep only; values < 1 mean never drop
  double gamma = 0.1;       // kStep only
  double min_lr = 0;        // kCosine only
};

// The learning rate of round `round_in_epoch` of epoch `epoch`. kCosine works on global rounds
// t = epoch * R + round_in_epoch out of T = total_epochs * R (R = rounds_per_epoch):
//   min_lr + 0.5 * (base - min_lr) * (1 + cos(pi * t / T))
// so the first round gets base and the rate would reach min_lr at t = T, one round after the
// last; rounds past T stay at min_lr (a job extended beyond its planned epochs) and T <= 0
// gives base. Constant and step ignore the round arguments.
// REQUIRES: epoch >= 0, 0 <= round_in_epoch.
double LearningRateAt(const LearningRateSchedule& schedule, int64_t epoch, int64_t round_in_epoch,
                      int64_t rounds_per_epoch, int64_t total_epochs);

}  // namespace mrtrain::updaters
