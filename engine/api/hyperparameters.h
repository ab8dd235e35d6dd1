#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mrtrain::api {

// The key/value settings a job spec gives a mapper or reducer (`model:` keys other than
// `type`, or `params:` of a plugin). Scalars are kept as the spec's text; a list is kept as
// its items joined by commas ("128,64"). Getters throw std::invalid_argument naming the key
// when a value does not parse; the engine turns that into a spec error.
class Hyperparameters {
 public:
  Hyperparameters() = default;
  explicit Hyperparameters(std::map<std::string, std::string> values)
      : values_(std::move(values)) {}

  bool Has(const std::string& key) const { return values_.count(key) != 0; }
  void Set(const std::string& key, const std::string& value) { values_[key] = value; }
  const std::map<std::string, std::string>& values() const { return values_; }

  std::string GetString(const std::string& key, const std::string& fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }

  double GetDouble(const std::string& key, double fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    return ParseDouble(key, it->second);
  }

  int64_t GetInt(const std::string& key, int64_t fallback) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    return ParseInt(key, it->second);
  }

  std::vector<int64_t> GetIntList(const std::string& key) const {
    std::vector<int64_t> out;
    auto it = values_.find(key);
    if (it == values_.end() || it->second.empty()) return out;
    size_t start = 0;
    while (start <= it->second.size()) {
      size_t comma = it->second.find(',', start);
      if (comma == std::string::npos) comma = it->second.size();
      out.push_back(ParseInt(key, it->second.substr(start, comma - start)));
      start = comma + 1;
    }
    return out;
  }

 private:
  static double ParseDouble(const std::string& key, const std::string& text) {
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') {
      throw std::invalid_argument("'" + key + "' must be a number, got '" + text + "'");
    }
    return v;
  }
  static int64_t ParseInt(const std::string& key, const std::string& text) {
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') {
      throw std::invalid_argument("'" + key + "' must be an integer, got '" + text + "'");
    }
    return v;
  }

  std::map<std::string, std::string> values_;
};

}  // namespace mrtrain::api
