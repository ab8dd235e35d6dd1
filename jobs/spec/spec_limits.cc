#include "jobs/spec/spec_limits.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "engine/tensor/model_layout.h"

namespace mrtrain::jobs {
namespace {

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

void CheckScalar(const YAML::Node& node, const std::string& path, const char* what,
                 SpecErrors* errors) {
  const size_t bad = FirstBadUtf8(node.Scalar());
  if (bad == std::string::npos) return;
  char byte[8];
  std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(node.Scalar()[bad]));
  errors->Add(path, node.Mark(),
              std::string(what) + " is not valid UTF-8 (byte " + byte + " at offset " +
                  std::to_string(bad) + "); spec text must be UTF-8");
}

// At least how many parameters a model of this type has; double, as hidden widths may be
// near 2^63 and only the comparison with the limit matters.
double MinParams(const std::string& type, const std::vector<int64_t>& hidden, double features,
                 double classes) {
  if (type == "linear" || type == "logistic") return features + 1;
  if (type == "softmax") return (features + 1) * classes;
  double total = 0;
  double in = features;
  for (int64_t width : hidden) {
    total += (in + 1) * static_cast<double>(width);
    in = static_cast<double>(width);
  }
  return total + (in + 1) * classes;
}

}  // namespace

void CheckUtf8(const YAML::Node& node, const std::string& path, SpecErrors* errors) {
  // yaml-cpp stops nesting at depth 2000, so this recursion is bounded.
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      CheckScalar(node, path, "the value", errors);
      return;
    case YAML::NodeType::Sequence:
      for (size_t i = 0; i < node.size(); ++i) {
        CheckUtf8(node[i], path + "[" + std::to_string(i) + "]", errors);
      }
      return;
    case YAML::NodeType::Map:
      for (const auto& pair : node) {
        const YAML::Node key = pair.first;
        std::string child = path;
        if (key.IsScalar()) {
          CheckScalar(key, path, "a key", errors);
          if (FirstBadUtf8(key.Scalar()) != std::string::npos) continue;
          child = path.empty() ? key.Scalar() : path + "." + key.Scalar();
        }
        CheckUtf8(pair.second, child, errors);
      }
      return;
    default:
      return;
  }
}

void SetLabelRules(const std::string& model_type, JobSpec* spec) {
  data::LabelKind kind = data::LabelKind::kAny;
  int64_t classes = 0;
  std::string rule;
  if (model_type == "logistic") {
    kind = data::LabelKind::kBinary;
    rule = "model.type is logistic";
  } else if (model_type == "softmax" || model_type == "mlp") {
    kind = data::LabelKind::kClass;
    if (spec->model_params.Has("classes")) {
      classes = spec->model_params.GetInt("classes", 0);
      rule = "model.classes is " + std::to_string(classes);
    } else {
      classes = kMaxClasses;
      rule = "model.classes is not set: at most " + std::to_string(kMaxClasses) + " classes";
    }
  }
  for (data::DatasetSpec* ds : {&spec->train, spec->test ? &*spec->test : nullptr,
                                spec->validation ? &*spec->validation : nullptr}) {
    if (ds == nullptr) continue;
    ds->label_kind = kind;
    ds->num_classes = classes;
    ds->label_rule = rule;
  }
}

void CheckModelSize(SpecMap* model, const std::string& model_type, const JobSpec& spec) {
  const std::vector<int64_t> hidden = spec.model_params.GetIntList("hidden");
  if (model_type == "mlp" && hidden.empty()) return;  // already reported
  const bool has_classes = spec.model_params.Has("classes");
  const double features = static_cast<double>(std::max<int64_t>(1, spec.train.num_features));
  const double classes =
      has_classes ? static_cast<double>(spec.model_params.GetInt("classes", 2)) : 2;
  const double params = MinParams(model_type, hidden, features, classes);
  if (params <= static_cast<double>(kMaxModelParams)) return;
  // The key that makes the model this large; data.train.features when no model key does.
  const std::string key = model_type == "mlp" ? "hidden" : has_classes ? "classes" : "type";
  if (!model->Has(key)) return;
  const std::string count =
      params < 9e18 ? std::to_string(static_cast<int64_t>(params)) : FormatNumber(params);
  model->Report(key, "the model would have at least " + count +
                         " parameters, over the limit of " + std::to_string(kMaxModelParams) +
                         " (1 GiB of float32)" +
                         (key == "type" ? " with data.train.features " +
                                              std::to_string(spec.train.num_features)
                                        : ""));
}

}  // namespace mrtrain::jobs
