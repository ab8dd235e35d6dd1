#include "engine/updaters/schedule.h"

#include <algorithm>
#include <cmath>

#include "engine/base/check.h"

namespace mrtrain::updaters {
namespace {

constexpr double kPi = 3.14159265358979323846;

double CosineRate(const LearningRateSchedule& schedule, int64_t epoch, int64_t round_in_epoch,
                  int64_t rounds_per_epoch, int64_t total_epochs) {
  const int64_t total_rounds = total_epochs * rounds_per_epoch;
  if (total_rounds <= 0) return schedule.base;
  const int64_t t = std::min(epoch * rounds_per_epoch + round_in_epoch, total_rounds);
  const double progress = static_cast<double>(t) / static_cast<double>(total_rounds);
  return schedule.min_lr +
         0.5 * (schedule.base - schedule.min_lr) * (1.0 + std::cos(kPi * progress));
}

double StepRate(const LearningRateSchedule& schedule, int64_t epoch) {
  if (schedule.step_epochs < 1) return schedule.base;
  const int64_t drops = epoch / schedule.step_epochs;  // floor, as epoch >= 0
  return schedule.base * std::pow(schedule.gamma, static_cast<double>(drops));
}

}  // namespace

double LearningRateAt(const LearningRateSchedule& schedule, int64_t epoch, int64_t round_in_epoch,
                      int64_t rounds_per_epoch, int64_t total_epochs) {
  MRTRAIN_DCHECK(epoch >= 0 && round_in_epoch >= 0);
  switch (schedule.kind) {
    case LearningRateSchedule::Kind::kConstant:
      return schedule.base;
    case LearningRateSchedule::Kind::kStep:
      return StepRate(schedule, epoch);
    case LearningRateSchedule::Kind::kCosine:
      return CosineRate(schedule, epoch, round_in_epoch, rounds_per_epoch, total_epochs);
  }
  return schedule.base;
}

}  // namespace mrtrain::updaters
