#pragma once

// Typed access to the YAML tree of a job spec, for the parser in job_spec.cc only. Every
// getter checks the type and range of one value and, when it is wrong, records an error that
// names where the value came from, its full key path and what is allowed, then carries on, so
// that one run reports every mistake in a spec instead of the first.

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/base/status.h"

namespace mrtrain::jobs {

// The errors found in one spec, each located as
//   "job.yaml:7" for a value from the file (1-based line),
//   "--set training.epochs" for a value at or under the path of an override,
//   "job.yaml" when there is no line (a missing key).
// Not thread-safe; one per parse.
class SpecErrors {
 public:
  explicit SpecErrors(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }

  // Values at or under `key_path` now come from the override "--set key_path=...".
  void AddOverridePath(const std::string& key_path) { override_paths_.push_back(key_path); }

  // Records "<where>: <key_path>: <what>". A null mark (line < 0) gives no line.
  void Add(const std::string& key_path, const YAML::Mark& mark, const std::string& what);
  // Records a message that already carries its location.
  void AddRaw(std::string message) { errors_.push_back({-1, std::move(message)}); }

  bool empty() const { return errors_.empty(); }
  // kInvalidArgument with every error, one a line: those with a line in line order, then the
  // others (overrides, missing keys) in the order found. REQUIRES: !empty().
  Status ToStatus() const;

 private:
  struct Error {
    int line;  // 0-based line in the file, or -1
    std::string message;
  };

  // The override path that `key_path` is at or under, or nullptr.
  const std::string* OverrideOf(const std::string& key_path) const;

  std::string source_;
  std::vector<std::string> override_paths_;
  std::vector<Error> errors_;
};

// An allowed range of integers, both ends included.
struct IntRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();

  static constexpr IntRange AtLeast(int64_t min) {
    return {min, std::numeric_limits<int64_t>::max()};
  }
  constexpr bool Contains(int64_t v) const { return v >= min && v <= max; }
  // ">= 1" or "in [1, 65536]".
  std::string Describe() const;
};

// An allowed range of finite numbers; each end may be open.
struct NumberRange {
  double min = -std::numeric_limits<double>::infinity();
  bool min_open = false;
  double max = std::numeric_limits<double>::infinity();
  bool max_open = false;

  static constexpr NumberRange Positive() { return {0, true}; }
  static constexpr NumberRange NonNegative() { return {0, false}; }
  // [0, 1): momentum and Adam's betas, where 1 would never forget.
  static constexpr NumberRange UnitHalfOpen() { return {0, false, 1, true}; }
  bool Contains(double v) const;
  // "> 0", ">= 0" or "in [0, 1)".
  std::string Describe() const;
};

// The shortest text that reads back as exactly `v` ("0.9", "1e-08"), so equal values always
// print the same, whatever the spec wrote.
std::string FormatNumber(double v);

// One map of the spec (the top level or a section such as `update`) at a key path. Unknown and
// duplicate keys are reported when it is built. Getters return nullopt when the key is absent or
// when its value is wrong (the error is then recorded). Borrows `errors`, which must outlive it.
class SpecMap {
 public:
  // `node` must be a map or null (an empty section, as in "test:" with nothing under it).
  SpecMap(SpecErrors* errors, const YAML::Node& node, std::string path,
          std::vector<std::string> allowed);
  // An absent section: every key is missing.
  SpecMap(SpecErrors* errors, std::string path) : errors_(errors), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  bool Has(const std::string& key) const { return entries_.count(key) != 0; }
  // "update.learning_rate" for key "learning_rate" of map "update".
  std::string PathOf(const std::string& key) const;

  std::optional<int64_t> Int(const std::string& key, IntRange range);
  std::optional<double> Number(const std::string& key, NumberRange range);
  std::optional<bool> Bool(const std::string& key);
  // Any non-empty scalar, as written, that is valid UTF-8 (names and paths reach logs and JSON
  // status pages; keys and settings are held to it too).
  std::optional<std::string> String(const std::string& key);
  // One of `allowed`.
  std::optional<std::string> Choice(const std::string& key,
                                    const std::vector<std::string>& allowed);
  // A non-empty list of integers in `range`.
  std::optional<std::vector<int64_t>> IntList(const std::string& key, IntRange range);
  // A non-empty list of non-empty UTF-8 strings.
  std::optional<std::vector<std::string>> StringList(const std::string& key);
  // A free-form map of settings (a plugin's `params`): each value a scalar, kept as written, or
  // a list of scalars, kept joined by commas ("128,64"). An empty or null map gives no settings.
  std::optional<std::map<std::string, std::string>> Settings(const std::string& key);
  // The section under `key`, empty when absent; nullopt (and an error) when not a map.
  std::optional<SpecMap> Map(const std::string& key, std::vector<std::string> allowed);
  // True when `key` holds an unquoted integer (as opposed to a name).
  bool IsIntText(const std::string& key) const;

  // Records "required key is missing; <hint>" for `key`.
  void ReportMissing(const std::string& key, const std::string& hint);
  // Records `what` at the line of `key`. REQUIRES: Has(key).
  void Report(const std::string& key, const std::string& what);

 private:
  struct Entry {
    YAML::Node key;
    YAML::Node value;
  };

  // Records "expected <expected>, got <what the value is>" at `key`.
  void ReportExpected(const std::string& key, const Entry& entry, const std::string& expected);
  // The text of a plain or tagged-non-string scalar, or nullopt with an error.
  std::optional<std::string> TypedScalar(const std::string& key, const std::string& expected);

  SpecErrors* errors_;  // not owned
  std::string path_;
  std::map<std::string, Entry> entries_;
};

// "a, b, c".
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace mrtrain::jobs
