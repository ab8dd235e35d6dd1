#pragma once

// A strict reader of the Prometheus text exposition format (0.0.4), for tests of /metrics:
// every line must be a well-formed HELP, TYPE or sample line, and every sample must belong to a
// family whose TYPE came before it.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mrtrain::testing {

struct PrometheusSample {
  std::string name;
  std::map<std::string, std::string> labels;  // values unescaped
  double value = 0;
};

struct PrometheusExposition {
  std::map<std::string, std::string> types;  // family -> counter, gauge, histogram, ...
  std::vector<PrometheusSample> samples;
  std::string error;  // the first malformed line and why; empty when all are well-formed

  // The value of the one sample with `name` and exactly these labels; nullopt if none.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
};

PrometheusExposition ParsePrometheus(const std::string& text);

}  // namespace mrtrain::testing
