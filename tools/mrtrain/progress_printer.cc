#include "tools/mrtrain/progress_printer.h"

#include <string>

#include "engine/base/duration_text.h"

namespace mrtrain::tools {

void ProgressPrinter::OnRound(int64_t epoch, int64_t round, int64_t rounds_per_epoch,
                              int64_t total_epochs, double elapsed_sec) {
  if (!interactive_) return;
  const bool last = round + 1 == rounds_per_epoch;
  if (!last && elapsed_sec - last_draw_ < 0.1) return;  // redraw at most 10 times a second
  last_draw_ = elapsed_sec;
  constexpr int kWidth = 30;
  const double fraction = double(round + 1) / rounds_per_epoch;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  std::fprintf(out_, "\r\033[Kepoch %lld/%lld [%s] %3d%% round %lld/%lld %s",
               static_cast<long long>(epoch + 1), static_cast<long long>(total_epochs), bar.c_str(),
               static_cast<int>(fraction * 100), static_cast<long long>(round + 1),
               static_cast<long long>(rounds_per_epoch), FormatDuration(elapsed_sec).c_str());
  std::fflush(out_);
}

void ProgressPrinter::OnEpoch(const runtime::EpochReport& report) {
  if (interactive_) std::fputs("\r\033[K", out_);
  std::fprintf(out_, "%s\n", report.ToLine().c_str());
  std::fflush(out_);
}

}  // namespace mrtrain::tools
