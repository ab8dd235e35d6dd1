#include "test/engine/data/data_files.h"

#include <zlib.h>

#include <cstring>
#include <stdexcept>

#include <catch2/catch.hpp>

namespace mrtrain::data {

void WriteGzip(const std::string& path, const std::string& contents) {
  gzFile file = gzopen(path.c_str(), "wb");
  if (file == nullptr) throw std::runtime_error("gzopen failed: " + path);
  if (!contents.empty()) {
    int wrote = gzwrite(file, contents.data(), static_cast<unsigned>(contents.size()));
    if (wrote != static_cast<int>(contents.size())) throw std::runtime_error("gzwrite failed");
  }
  if (gzclose(file) != Z_OK) throw std::runtime_error("gzclose failed: " + path);
}

static void AppendBigEndian32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

std::string IdxFile(uint8_t type, const std::vector<uint32_t>& dims, const std::string& data) {
  std::string out = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) AppendBigEndian32(d, &out);
  return out + data;
}

std::string BigEndianFloats(const std::vector<float>& values) {
  std::string out;
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    AppendBigEndian32(bits, &out);
  }
  return out;
}

std::vector<PartitionData> LoadAllForTest(const Dataset& dataset) {
  std::vector<PartitionData> parts;
  for (int64_t p = 0; p < dataset.num_partitions(); ++p) {
    auto part = dataset.LoadPartition(p);
    INFO("partition " << p << ": " << part.status().ToString());
    REQUIRE(part.ok());
    parts.push_back(std::move(part).value());
  }
  return parts;
}

std::vector<float> AllLabels(const std::vector<PartitionData>& parts) {
  std::vector<float> labels;
  for (const PartitionData& part : parts) {
    labels.insert(labels.end(), part.labels.begin(), part.labels.end());
  }
  return labels;
}

}  // namespace mrtrain::data
