#include "jobs/spec/yaml_reader.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace mrtrain::jobs {
namespace {

// Strict decimal: an optional sign and digits. yaml-cpp's own conversion would also take
// octal and hex forms, which nobody means in a training spec.
std::optional<int64_t> ParseInt(const std::string& text) {
  size_t digits = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (digits == text.size()) return std::nullopt;
  for (size_t i = digits; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  errno = 0;
  long long v = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE) return std::nullopt;
  return static_cast<int64_t>(v);
}

// Decimal and exponent forms only: strtod alone would also take "nan", "inf" and hex floats.
std::optional<double> ParseNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    bool ok = (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
    if (!ok) return std::nullopt;
  }
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

// A quoted or !!str-tagged scalar is a string even when it looks like a number; a spec that
// quotes a number most likely meant something else, so typed getters refuse it.
bool IsStringScalar(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

// A scalar as quoted in messages, cut short so that a pasted blob cannot flood the terminal.
std::string Quote(const std::string& text) {
  constexpr size_t kMaxShown = 60;
  if (text.size() <= kMaxShown) return "'" + text + "'";
  return "'" + text.substr(0, kMaxShown) + "...'";
}

// What a value is, for "got ..." in messages.
std::string DescribeValue(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Scalar:
      return (IsStringScalar(node) ? "the string " : "") + Quote(node.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// The offset of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF), or npos when `text` is valid.
size_t FirstBadUtf8(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string::npos;
}

// "<what> is not valid UTF-8 (byte 0xFF at offset 0); ...", or "" when `text` is valid.
std::string Utf8Problem(const std::string& text, const char* what) {
  const size_t bad = FirstBadUtf8(text);
  if (bad == std::string::npos) return "";
  char byte[8];
  std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[bad]));
  return std::string(what) + " is not valid UTF-8 (byte " + byte + " at offset " +
         std::to_string(bad) + "); spec text must be UTF-8";
}

}  // namespace

void SpecErrors::Add(const std::string& key_path, const YAML::Mark& mark, const std::string& what) {
  std::string located = key_path.empty() ? what : key_path + ": " + what;
  if (const std::string* o = OverrideOf(key_path)) {
    errors_.push_back({-1, "--set " + *o + ": " + located});
  } else if (mark.line < 0) {
    errors_.push_back({-1, source_ + ": " + located});
  } else {
    // yaml-cpp counts lines from 0.
    errors_.push_back({mark.line, source_ + ":" + std::to_string(mark.line + 1) + ": " + located});
  }
}

Status SpecErrors::ToStatus() const {
  std::vector<Error> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Error& a, const Error& b) {
    return static_cast<unsigned>(a.line) < static_cast<unsigned>(b.line);  // -1 sorts last
  });
  std::string all;
  for (const Error& e : sorted) {
    if (!all.empty()) all += '\n';
    all += e.message;
  }
  return InvalidArgumentError(all);
}

const std::string* SpecErrors::OverrideOf(const std::string& key_path) const {
  // The deepest override wins: "--set model={...}" then "--set model.classes=3" leaves
  // model.classes to the second.
  const std::string* best = nullptr;
  for (const std::string& o : override_paths_) {
    bool covers =
        key_path.compare(0, o.size(), o) == 0 &&
        (key_path.size() == o.size() || key_path[o.size()] == '.' || key_path[o.size()] == '[');
    if (covers && (best == nullptr || o.size() > best->size())) best = &o;
  }
  return best;
}

std::string IntRange::Describe() const {
  if (max == std::numeric_limits<int64_t>::max()) return ">= " + std::to_string(min);
  return "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

bool NumberRange::Contains(double v) const {
  bool above = min_open ? v > min : v >= min;
  bool below = max_open ? v < max : v <= max;
  return above && below;
}

std::string NumberRange::Describe() const {
  if (std::isinf(max)) return (min_open ? "> " : ">= ") + FormatNumber(min);
  return std::string(min_open ? "in (" : "in [") + FormatNumber(min) + ", " + FormatNumber(max) +
         (max_open ? ")" : "]");
}

std::string FormatNumber(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return std::to_string(v);  // cannot happen with 64 bytes
  return std::string(buf, end);
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

SpecMap::SpecMap(SpecErrors* errors, const YAML::Node& node, std::string path,
                 std::vector<std::string> allowed)
    : errors_(errors), path_(std::move(path)) {
  if (!node.IsMap()) return;
  // Handles by value: yaml-cpp's map iterator yields a temporary pair, and a reference into it
  // would dangle (AddressSanitizer catches it).
  for (const auto& pair : node) {
    const YAML::Node key = pair.first;
    if (!key.IsScalar()) {
      errors_->Add(path_, key.Mark(), "keys must be plain names, got " + DescribeValue(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::string why = Utf8Problem(name, "a key"); !why.empty()) {
      errors_->Add(path_, key.Mark(), why);
      continue;
    }
    bool known = false;
    for (const std::string& a : allowed) known = known || a == name;
    if (!known) {
      errors_->Add(PathOf(name), key.Mark(), "unknown key; allowed: " + JoinNames(allowed));
      continue;
    }
    auto [pos, inserted] = entries_.emplace(name, Entry{key, pair.second});
    if (!inserted) {
      errors_->Add(
          PathOf(name), key.Mark(),
          "duplicate key; first given at line " + std::to_string(pos->second.key.Mark().line + 1));
    }
  }
}

std::string SpecMap::PathOf(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void SpecMap::ReportMissing(const std::string& key, const std::string& hint) {
  errors_->Add(PathOf(key), YAML::Mark::null_mark(), "required key is missing; " + hint);
}

void SpecMap::Report(const std::string& key, const std::string& what) {
  errors_->Add(PathOf(key), entries_.at(key).key.Mark(), what);
}

void SpecMap::ReportExpected(const std::string& key, const Entry& entry,
                             const std::string& expected) {
  errors_->Add(PathOf(key), entry.key.Mark(),
               "expected " + expected + ", got " + DescribeValue(entry.value));
}

std::optional<std::string> SpecMap::TypedScalar(const std::string& key,
                                                const std::string& expected) {
  const Entry& entry = entries_.at(key);
  if (!entry.value.IsScalar() || IsStringScalar(entry.value)) {
    ReportExpected(key, entry, expected);
    return std::nullopt;
  }
  return entry.value.Scalar();
}

std::optional<int64_t> SpecMap::Int(const std::string& key, IntRange range) {
  if (!Has(key)) return std::nullopt;
  std::string expected = "an integer " + range.Describe();
  std::optional<std::string> text = TypedScalar(key, expected);
  if (!text) return std::nullopt;
  std::optional<int64_t> v = ParseInt(*text);
  if (!v || !range.Contains(*v)) {
    ReportExpected(key, entries_.at(key), expected);
    return std::nullopt;
  }
  return v;
}

std::optional<double> SpecMap::Number(const std::string& key, NumberRange range) {
  if (!Has(key)) return std::nullopt;
  std::string expected = "a number " + range.Describe();
  std::optional<std::string> text = TypedScalar(key, expected);
  if (!text) return std::nullopt;
  std::optional<double> v = ParseNumber(*text);
  if (!v || !range.Contains(*v)) {
    ReportExpected(key, entries_.at(key), expected);
    return std::nullopt;
  }
  return v;
}

std::optional<bool> SpecMap::Bool(const std::string& key) {
  if (!Has(key)) return std::nullopt;
  std::optional<std::string> text = TypedScalar(key, "true or false");
  if (!text) return std::nullopt;
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  ReportExpected(key, entries_.at(key), "true or false");
  return std::nullopt;
}

std::optional<std::string> SpecMap::String(const std::string& key) {
  if (!Has(key)) return std::nullopt;
  const Entry& entry = entries_.at(key);
  if (!entry.value.IsScalar() || entry.value.Scalar().empty()) {
    ReportExpected(key, entry, "a non-empty string");
    return std::nullopt;
  }
  if (std::string why = Utf8Problem(entry.value.Scalar(), "the value"); !why.empty()) {
    errors_->Add(PathOf(key), entry.key.Mark(), why);
    return std::nullopt;
  }
  return entry.value.Scalar();
}

std::optional<std::string> SpecMap::Choice(const std::string& key,
                                           const std::vector<std::string>& allowed) {
  if (!Has(key)) return std::nullopt;
  const Entry& entry = entries_.at(key);
  if (entry.value.IsScalar()) {
    for (const std::string& a : allowed) {
      if (entry.value.Scalar() == a) return a;
    }
  }
  ReportExpected(key, entry, "one of " + JoinNames(allowed));
  return std::nullopt;
}

std::optional<std::vector<int64_t>> SpecMap::IntList(const std::string& key, IntRange range) {
  if (!Has(key)) return std::nullopt;
  const Entry& entry = entries_.at(key);
  std::string expected_item = "an integer " + range.Describe();
  if (!entry.value.IsSequence() || entry.value.size() == 0) {
    ReportExpected(key, entry, "a non-empty list of integers " + range.Describe());
    return std::nullopt;
  }
  std::vector<int64_t> out;
  bool ok = true;
  for (size_t i = 0; i < entry.value.size(); ++i) {
    const YAML::Node item = entry.value[i];
    std::optional<int64_t> v;
    if (item.IsScalar() && !IsStringScalar(item)) v = ParseInt(item.Scalar());
    if (v && range.Contains(*v)) {
      out.push_back(*v);
      continue;
    }
    errors_->Add(PathOf(key) + "[" + std::to_string(i) + "]", item.Mark(),
                 "expected " + expected_item + ", got " + DescribeValue(item));
    ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::string>> SpecMap::StringList(const std::string& key) {
  if (!Has(key)) return std::nullopt;
  const Entry& entry = entries_.at(key);
  if (!entry.value.IsSequence() || entry.value.size() == 0) {
    ReportExpected(key, entry, "a non-empty list of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (size_t i = 0; i < entry.value.size(); ++i) {
    const YAML::Node item = entry.value[i];
    const std::string why = item.IsScalar() ? Utf8Problem(item.Scalar(), "the value") : "";
    if (item.IsScalar() && !item.Scalar().empty() && why.empty()) {
      out.push_back(item.Scalar());
      continue;
    }
    if (!why.empty()) {
      errors_->Add(PathOf(key) + "[" + std::to_string(i) + "]", item.Mark(), why);
      ok = false;
      continue;
    }
    errors_->Add(PathOf(key) + "[" + std::to_string(i) + "]", item.Mark(),
                 "expected a non-empty string, got " + DescribeValue(item));
    ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::map<std::string, std::string>> SpecMap::Settings(const std::string& key) {
  if (!Has(key)) return std::nullopt;
  const Entry& entry = entries_.at(key);
  std::map<std::string, std::string> out;
  if (entry.value.IsNull()) return out;
  if (!entry.value.IsMap()) {
    ReportExpected(key, entry, "a map of settings");
    return std::nullopt;
  }
  bool ok = true;
  for (const auto& kv : entry.value) {
    const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
    const std::string path = PathOf(key) + "." + name;
    if (name.empty()) {
      errors_->Add(PathOf(key), kv.first.Mark(), "setting names must be non-empty strings");
      ok = false;
      continue;
    }
    std::string why = Utf8Problem(name, "the setting name");
    for (size_t i = 0; why.empty() && kv.second.IsSequence() && i < kv.second.size(); ++i) {
      if (kv.second[i].IsScalar()) why = Utf8Problem(kv.second[i].Scalar(), "the value");
    }
    if (why.empty() && kv.second.IsScalar()) why = Utf8Problem(kv.second.Scalar(), "the value");
    if (!why.empty()) {
      errors_->Add(path, kv.first.Mark(), why);
      ok = false;
      continue;
    }
    if (out.count(name) != 0) {
      errors_->Add(path, kv.first.Mark(), "duplicate key");
      ok = false;
      continue;
    }
    if (kv.second.IsScalar()) {
      out[name] = kv.second.Scalar();
      continue;
    }
    std::string joined;
    bool list_ok = kv.second.IsSequence();
    for (size_t i = 0; list_ok && i < kv.second.size(); ++i) {
      list_ok = kv.second[i].IsScalar();
      if (list_ok) joined += (i == 0 ? "" : ",") + kv.second[i].Scalar();
    }
    if (!list_ok) {
      errors_->Add(path, kv.second.Mark(),
                   "expected a scalar or a list of scalars, got " + DescribeValue(kv.second));
      ok = false;
      continue;
    }
    out[name] = joined;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<SpecMap> SpecMap::Map(const std::string& key, std::vector<std::string> allowed) {
  if (!Has(key)) return SpecMap(errors_, PathOf(key));
  const Entry& entry = entries_.at(key);
  if (!entry.value.IsMap() && !entry.value.IsNull()) {
    ReportExpected(key, entry, "a map with keys " + JoinNames(allowed));
    return std::nullopt;
  }
  return SpecMap(errors_, entry.value, PathOf(key), std::move(allowed));
}

bool SpecMap::IsIntText(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  const YAML::Node& v = it->second.value;
  return v.IsScalar() && !IsStringScalar(v) && ParseInt(v.Scalar()).has_value();
}

}  // namespace mrtrain::jobs
