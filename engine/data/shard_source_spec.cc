#include "engine/data/shard_source_spec.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/data/shard_reader.h"

namespace mrtrain::data {
namespace {

std::string Number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", v);
  return text;
}

std::string LabelRule(const DatasetSpec& spec) {
  switch (spec.label_kind) {
    case LabelKind::kAny:
      return "any";
    case LabelKind::kBinary:
      return "binary";
    case LabelKind::kClass:
      return "classes<" + std::to_string(spec.num_classes);
  }
  return "?";
}

bool ParseInt(const std::string& text, int64_t* v) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *v);
  return ec == std::errc() && ptr == end;
}

// Sets the field `key` of *spec from its recorded text; false when the text does not parse.
bool SetField(const std::string& key, const std::string& value, DatasetSpec* spec) {
  if (key == "format") {
    Result<DataFormat> format = ParseDataFormat(value);
    if (format.ok()) spec->format = *format;
    return format.ok();
  }
  if (key == "path") spec->path = value;
  if (key == "partitions") return ParseInt(value, &spec->num_partitions);
  if (key == "on_bad_record") {
    spec->on_bad_record = value == "skip" ? BadRecordPolicy::kSkip : BadRecordPolicy::kFail;
  }
  if (key == "header") spec->csv_header = value == "true";
  if (key == "label_column") spec->label_column = value;
  if (key == "delimiter") {
    if (value.size() != 1) return false;
    spec->delimiter = value[0];
  }
  if (key == "features") return ParseInt(value, &spec->num_features);
  if (key == "zero_based") spec->zero_based = value == "true";
  if (key == "labels") spec->labels_path = value;
  if (key == "scale") {
    char* end = nullptr;
    spec->scale = std::strtod(value.c_str(), &end);
    return !value.empty() && *end == '\0';
  }
  if (key == "max_decoded_mb") return ParseInt(value, &spec->max_decoded_mb);
  if (key == "hash_bits") {
    int64_t bits;
    if (!ParseInt(value, &bits) || bits < 1 || bits > kMaxHashBits) return false;
    spec->hash_bits = static_cast<int>(bits);
  }
  return true;  // label_rule: informative; the job's own rule is checked on load
}

}  // namespace

SpecFields SourceSpecFields(const DatasetSpec& spec) {
  SpecFields fields = {
      {"format", DataFormatName(spec.format)},
      {"path", spec.path},
      {"partitions", std::to_string(spec.num_partitions)},
      {"on_bad_record", spec.on_bad_record == BadRecordPolicy::kSkip ? "skip" : "fail"},
      {"header", spec.csv_header ? "true" : "false"},
      {"label_column", spec.label_column},
      {"delimiter", std::string(1, spec.delimiter)},
      {"features", std::to_string(spec.num_features)},
      {"zero_based", spec.zero_based ? "true" : "false"},
      {"labels", spec.labels_path},
      {"scale", Number(spec.scale)},
      {"max_decoded_mb", std::to_string(spec.max_decoded_mb)},
      {"label_rule", LabelRule(spec)},
  };
  // Only when set, so shards converted before the key read back as they were written.
  if (spec.hash_bits != 0) fields.push_back({"hash_bits", std::to_string(spec.hash_bits)});
  return fields;
}

Result<DatasetSpec> ReadShardSourceSpec(const DatasetSpec& shards) {
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> files, ResolveFiles(shards.path));
  MRTRAIN_ASSIGN_OR_RETURN(MappedShard shard, MappedShard::Open(files[0]));
  DatasetSpec source;
  for (const auto& [key, value] : shard.header().spec) {
    if (!SetField(key, value, &source)) {
      return CorruptionError(files[0] + ": the recorded source spec has " + key + "=" + value);
    }
  }
  return source;
}

}  // namespace mrtrain::data
