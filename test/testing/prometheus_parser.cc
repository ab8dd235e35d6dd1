#include "test/testing/prometheus_parser.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace mrtrain::testing {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// Reads a metric or label name at `at`; empty when there is none.
std::string ReadName(const std::string& line, size_t* at, bool label) {
  size_t i = *at;
  if (i >= line.size() || !IsNameStart(line[i]) || (label && line[i] == ':')) return "";
  while (i < line.size() && IsNameChar(line[i]) && !(label && line[i] == ':')) ++i;
  std::string name = line.substr(*at, i - *at);
  *at = i;
  return name;
}

std::optional<double> ReadValue(const std::string& text) {
  if (text == "NaN") return std::nan("");
  if (text == "+Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

// The family a sample name belongs to: a histogram's _bucket, _sum and _count samples belong to
// the histogram.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

std::string ParseSample(const std::string& line, const PrometheusExposition& e,
                        PrometheusSample* out) {
  size_t at = 0;
  out->name = ReadName(line, &at, false);
  if (out->name.empty()) return "no metric name";
  if (!e.types.count(FamilyOf(out->name, e.types))) return "sample before its # TYPE line";
  if (at < line.size() && line[at] == '{') {
    ++at;
    while (at < line.size() && line[at] != '}') {
      const std::string label = ReadName(line, &at, true);
      if (label.empty()) return "bad label name";
      if (line.compare(at, 2, "=\"") != 0) return "expected =\" after a label name";
      at += 2;
      std::string value;
      while (at < line.size() && line[at] != '"') {
        if (line[at] == '\\') {
          if (at + 1 >= line.size()) return "dangling escape";
          const char c = line[at + 1];
          if (c == 'n') {
            value += '\n';
          } else if (c == '\\' || c == '"') {
            value += c;
          } else {
            return std::string("bad escape \\") + c;
          }
          at += 2;
        } else {
          value += line[at++];
        }
      }
      if (at >= line.size()) return "unterminated label value";
      ++at;
      if (out->labels.count(label)) return "label " + label + " twice";
      out->labels[label] = value;
      if (at < line.size() && line[at] == ',') ++at;
    }
    if (at >= line.size()) return "unterminated label set";
    ++at;
  }
  if (at >= line.size() || line[at] != ' ') return "expected a space before the value";
  const std::string rest = line.substr(at + 1);
  // An optional timestamp may follow; this project writes none.
  auto value = ReadValue(rest);
  if (!value) return "bad value '" + rest + "'";
  out->value = *value;
  return "";
}

}  // namespace

std::optional<double> PrometheusExposition::Value(
    const std::string& name, const std::map<std::string, std::string>& labels) const {
  std::optional<double> found;
  for (const PrometheusSample& s : samples) {
    if (s.name != name || s.labels != labels) continue;
    if (found) return std::nullopt;  // two samples with one identity: not a single value
    found = s.value;
  }
  return found;
}

PrometheusExposition ParsePrometheus(const std::string& text) {
  PrometheusExposition e;
  if (!text.empty() && text.back() != '\n') {
    e.error = "the text does not end with a line feed";
    return e;
  }
  std::istringstream in(text);
  std::string line;
  int number = 0;
  std::map<std::string, bool> helped;
  while (std::getline(in, line)) {
    ++number;
    std::string why;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      size_t at = 7;
      const std::string name = ReadName(line, &at, false);
      if (name.empty() || (at < line.size() && line[at] != ' ')) {
        why = "bad metric name";
      } else if (line[2] == 'T') {
        const std::string type = at < line.size() ? line.substr(at + 1) : "";
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
            type != "untyped") {
          why = "bad type '" + type + "'";
        } else if (e.types.count(name)) {
          why = "second # TYPE for " + name;
        } else {
          e.types[name] = type;
        }
      } else if (helped[name]) {
        why = "second # HELP for " + name;
      } else {
        helped[name] = true;
      }
    } else if (line.empty() || line[0] == '#') {
      continue;  // comments and blank lines are allowed
    } else {
      PrometheusSample sample;
      why = ParseSample(line, e, &sample);
      if (why.empty()) e.samples.push_back(sample);
    }
    if (!why.empty()) {
      e.error = "line " + std::to_string(number) + ": " + why + ": " + line;
      return e;
    }
  }
  return e;
}

}  // namespace mrtrain::testing
