#include "runtime/predict/prediction_parts.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/base/crc32c.h"
#include "runtime/checkpoint/atomic_file.h"

namespace mrtrain::runtime {
namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return IOError("cannot read " + path);
  return bytes;
}

}  // namespace

std::string PredictionPartName(int64_t partition) {
  char name[40];
  std::snprintf(name, sizeof name, "part-%05lld.csv", static_cast<long long>(partition));
  return name;
}

Result<PredictionPart> WritePredictionPart(const std::string& dir, int64_t partition,
                                           int64_t first_row, int outputs,
                                           const PartPredictions& part) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IOError("cannot create " + dir + ": " + ec.message());
  std::ostringstream bytes;
  bytes << PredictionHeader(outputs);
  int64_t row = first_row;
  WriteNumberedLines(part, &row, bytes);
  const std::string text = bytes.str();
  PredictionPart out;
  out.partition = partition;
  out.file = PredictionPartName(partition);
  out.first_row = first_row;
  out.rows = part.rows;
  out.bytes = text.size();
  out.crc32c = Crc32c(text.data(), text.size());
  out.correct = part.correct;
  out.squared_error = part.squared_error;
  out.skipped = part.skipped;
  MRTRAIN_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + out.file, text));
  return out;
}

Status RemovePredictionManifest(const std::string& dir) {
  const std::string path = dir + "/" + kPredictionManifestName;
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) return IOError("cannot remove " + path + ": " + ec.message());
  return Status::Ok();
}

Status WritePredictionManifest(const std::string& dir, const PredictionManifest& manifest) {
  nlohmann::json j;
  j["format"] = "mrtrain-predictions-1";
  const ModelIdentity& m = manifest.model;
  j["model"] = {{"path", m.path}, {"bytes", m.bytes}, {"crc32c", m.crc32c}};
  j["outputs"] = manifest.outputs;
  j["classifier"] = manifest.classifier;
  int64_t rows = 0;
  nlohmann::json parts = nlohmann::json::array();
  for (const PredictionPart& p : manifest.parts) {
    rows += p.rows;
    parts.push_back({{"partition", p.partition},
                     {"file", p.file},
                     {"first_row", p.first_row},
                     {"rows", p.rows},
                     {"bytes", p.bytes},
                     {"crc32c", p.crc32c},
                     {"correct", p.correct},
                     {"squared_error", p.squared_error},
                     {"skipped_records", p.skipped}});
  }
  j["partitions"] = manifest.parts.size();
  j["rows"] = rows;
  j["parts"] = std::move(parts);
  const std::string text = j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return WriteFileAtomically(dir + "/" + kPredictionManifestName, text);
}

Result<PredictionManifest> ReadPredictionManifest(const std::string& dir) {
  const std::string path = dir + "/" + kPredictionManifestName;
  MRTRAIN_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  PredictionManifest out;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.at("format") != "mrtrain-predictions-1") {
      return CorruptionError(path + ": format is " + j.at("format").dump() +
                             "; expected \"mrtrain-predictions-1\"");
    }
    const nlohmann::json& m = j.at("model");
    out.model.path = m.at("path").get<std::string>();
    out.model.bytes = m.at("bytes").get<uint64_t>();
    out.model.crc32c = m.at("crc32c").get<uint32_t>();
    out.outputs = j.at("outputs").get<int>();
    out.classifier = j.at("classifier").get<bool>();
    for (const nlohmann::json& p : j.at("parts")) {
      PredictionPart part;
      part.partition = p.at("partition").get<int64_t>();
      part.file = p.at("file").get<std::string>();
      part.first_row = p.at("first_row").get<int64_t>();
      part.rows = p.at("rows").get<int64_t>();
      part.bytes = p.at("bytes").get<uint64_t>();
      part.crc32c = p.at("crc32c").get<uint32_t>();
      part.correct = p.at("correct").get<int64_t>();
      part.squared_error = p.at("squared_error").get<double>();
      part.skipped = p.at("skipped_records").get<int64_t>();
      out.parts.push_back(std::move(part));
    }
  } catch (const nlohmann::json::exception& e) {
    return CorruptionError(path + ": " + e.what());
  }
  for (size_t i = 0; i < out.parts.size(); ++i) {
    const PredictionPart& p = out.parts[i];
    if (p.partition != static_cast<int64_t>(i) || p.file != PredictionPartName(p.partition)) {
      return CorruptionError(path + ": parts[" + std::to_string(i) + "] is " + p.file +
                             "; expected " + PredictionPartName(static_cast<int64_t>(i)));
    }
    auto bytes = ReadWholeFile(dir + "/" + p.file);
    if (!bytes.ok()) return CorruptionError(path + " lists " + p.file + ", which is missing");
    const uint32_t crc = Crc32c(bytes->data(), bytes->size());
    if (bytes->size() != p.bytes || crc != p.crc32c) {
      return CorruptionError(dir + "/" + p.file + ": " + std::to_string(bytes->size()) +
                             " bytes with CRC32C " + std::to_string(crc) + "; the manifest says " +
                             std::to_string(p.bytes) + " bytes with CRC32C " +
                             std::to_string(p.crc32c));
    }
  }
  return out;
}

}  // namespace mrtrain::runtime
