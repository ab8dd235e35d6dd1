#include "jobs/spec/spec_overrides.h"

#include <optional>

namespace mrtrain::jobs {
namespace {

std::string Trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

// Splits "a.b.c" into its keys; nullopt when any key is empty ("a..b", ".a", "a.").
std::optional<std::vector<std::string>> SplitPath(const std::string& path) {
  std::vector<std::string> keys;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string key =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) return std::nullopt;
    keys.push_back(key);
    if (dot == std::string::npos) return keys;
    start = dot + 1;
  }
}

// Sets root[keys...] = value, creating maps along the way. Returns the error text, or "".
std::string SetAtPath(const std::vector<std::string>& keys, const YAML::Node& value,
                      YAML::Node* root) {
  if (root->IsNull()) root->reset(YAML::Node(YAML::NodeType::Map));
  YAML::Node cur = *root;
  std::string walked;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + keys[i];
    // Non-const operator[] adds the key to the map once something is assigned to it.
    YAML::Node child = cur[keys[i]];
    if (!child.IsDefined() || child.IsNull()) {
      child = YAML::Node(YAML::NodeType::Map);
    } else if (!child.IsMap()) {
      return walked + " is not a map in the spec, so it has no key '" + keys[i + 1] + "'";
    }
    cur.reset(child);
  }
  cur[keys.back()] = value;
  return "";
}

void ApplyOne(const std::string& override_text, YAML::Node* root, SpecErrors* errors) {
  const std::string label = "--set " + override_text + ": ";
  size_t eq = override_text.find('=');
  if (eq == std::string::npos) {
    errors->AddRaw(label + "malformed override; expected key.path=value");
    return;
  }
  std::string path = Trim(override_text.substr(0, eq));
  if (path.empty()) {
    errors->AddRaw(label + "malformed override; the key path before '=' is empty");
    return;
  }
  std::optional<std::vector<std::string>> keys = SplitPath(path);
  if (!keys) {
    errors->AddRaw(label + "malformed override; empty key in the path '" + path + "'");
    return;
  }
  YAML::Node value;
  try {
    value = YAML::Load(override_text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    errors->AddRaw(label + "the value is not valid YAML: " + e.msg);
    return;
  }
  std::string problem = SetAtPath(*keys, value, root);
  if (!problem.empty()) {
    errors->AddRaw(label + problem);
    return;
  }
  errors->AddOverridePath(path);
}

}  // namespace

void ApplyOverrides(const std::vector<std::string>& overrides, YAML::Node* root,
                    SpecErrors* errors) {
  for (const std::string& o : overrides) ApplyOne(o, root, errors);
}

}  // namespace mrtrain::jobs
