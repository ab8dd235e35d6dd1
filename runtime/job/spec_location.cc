#include "runtime/job/spec_location.h"

#include <cctype>
#include <optional>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace mrtrain::runtime {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    if (dot == std::string::npos) dot = path.size();
    parts.push_back(path.substr(start, dot - start));
    start = dot + 1;
  }
  return parts;
}

// The 0-based line of the key at `parts` in `text`, or nullopt.
std::optional<int> LineOf(const std::string& text, const std::vector<std::string>& parts) {
  try {
    YAML::Node node = YAML::Load(text);
    std::optional<int> line;
    for (const std::string& part : parts) {
      if (!node.IsMap()) return std::nullopt;
      YAML::Node next;
      for (const auto& entry : node) {
        if (entry.first.IsScalar() && entry.first.Scalar() == part) {
          line = entry.first.Mark().line;
          next = entry.second;
        }
      }
      if (!next) return std::nullopt;
      node = next;
    }
    return line;
  } catch (const YAML::Exception&) {
    return std::nullopt;  // the parser accepted this text; nothing better to say than the file
  }
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool NamesWord(const std::string& message, const std::string& word) {
  for (size_t at = message.find(word); at != std::string::npos; at = message.find(word, at + 1)) {
    const bool starts = at == 0 || !IsWordChar(message[at - 1]);
    const size_t end = at + word.size();
    if (starts && (end == message.size() || !IsWordChar(message[end]))) return true;
  }
  return false;
}

}  // namespace

std::string LocateKey(const jobs::JobSpec& spec, const std::string& key_path) {
  // A later override of the same path wins, as when the spec was parsed.
  for (auto it = spec.overrides.rbegin(); it != spec.overrides.rend(); ++it) {
    const std::string key = it->substr(0, it->find('='));
    if (key_path == key || key_path.compare(0, key.size() + 1, key + ".") == 0) {
      return "--set " + key;
    }
  }
  const std::optional<int> line = LineOf(spec.text, Split(key_path));
  return line ? spec.source_path + ":" + std::to_string(*line + 1) : spec.source_path;
}

std::string ParamsKeyIn(const std::string& message, const api::Hyperparameters& params,
                        const std::string& section, const std::string& fallback) {
  for (const auto& entry : params.values()) {
    if (NamesWord(message, entry.first)) return section + ".params." + entry.first;
  }
  return params.values().empty() ? fallback : section + ".params";
}

}  // namespace mrtrain::runtime
