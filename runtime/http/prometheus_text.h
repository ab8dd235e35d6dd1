#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mrtrain::runtime {

// Label name/value pairs of one sample, in the order written.
using PrometheusLabels = std::vector<std::pair<std::string, std::string>>;

// Writes the Prometheus text exposition format, version 0.0.4: per metric family one # HELP
// and one # TYPE line, then its samples. Written by hand rather than with prometheus-cpp: its
// registry holds live instrument objects and its exposer brings a second HTTP server, while
// the master renders a snapshot of counters it keeps anyway, and the format is a few lines of
// escaping rules (kept here and tested by parsing the output). Not thread-safe.
class PrometheusText {
 public:
  // Starts a family. `type` is "counter", "gauge" or "histogram"; `name` must match
  // [a-zA-Z_:][a-zA-Z0-9_:]* (the callers use constants).
  void Family(const std::string& name, const std::string& type, const std::string& help);
  // One sample line: name{labels} value. Label values are escaped (\\, \", \n).
  void Sample(const std::string& name, const PrometheusLabels& labels, double value);
  // The samples of one histogram: cumulative _bucket{le=...} lines (the last le="+Inf"),
  // _sum and _count. `counts[i]` counts observations <= bounds[i]; counts has one more entry
  // (those above the last bound).
  void Histogram(const std::string& name, const PrometheusLabels& labels,
                 const std::vector<double>& bounds, const std::vector<int64_t>& counts, double sum);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// A label value escaped for the exposition format: backslash, double quote and line feed.
std::string EscapePrometheusLabel(const std::string& value);
// A sample value: integers without a fraction, NaN, +Inf, -Inf as the format spells them.
std::string FormatPrometheusValue(double value);

}  // namespace mrtrain::runtime
