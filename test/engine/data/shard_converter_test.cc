#include "engine/data/shard_converter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/data/shard_format.h"
#include "engine/data/shard_source_spec.h"
#include "engine/data/shard_writer.h"
#include "test/engine/data/shard_test_files.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST_CASE("convert writes one shard per partition and reports progress after each", "[data]") {
  TempDir dir;
  const DatasetSpec text = SmallLibsvmForTest(dir.path(), 50, 4);
  std::vector<ConvertProgress> seen;
  ConvertOptions options;
  options.threads = 2;
  options.on_progress = [&seen](const ConvertProgress& p) { seen.push_back(p); };
  auto summary = ConvertToShards(text, dir.File("out"), options);
  REQUIRE(summary.ok());
  CHECK(Names(dir.File("out")) == std::vector<std::string>{"part-00000.mrs", "part-00001.mrs",
                                                           "part-00002.mrs", "part-00003.mrs"});
  CHECK(summary->totals.rows == 49);
  CHECK(summary->skipped_records == 1);
  REQUIRE(seen.size() == 4);
  CHECK(seen.back().partitions_done == 4);
  CHECK(seen.back().rows == 49);
  int64_t bytes = 0;
  for (const std::string& f : summary->files) bytes += static_cast<int64_t>(fs::file_size(f));
  CHECK(seen.back().bytes_written == bytes);
}

TEST_CASE("a convert that fails halfway leaves no shard behind", "[data]") {
  TempDir dir;
  const DatasetSpec text = SmallLibsvmForTest(dir.path(), 60, 3);
  const std::string out = dir.File("out");
  SECTION("a shard that cannot be written") {
    // Partition 1's temporary file is taken by a folder: its write fails, 0 and 2 succeed.
    fs::create_directories(ShardTempPath(out + "/part-00001.mrs"));
    auto summary = ConvertToShards(text, out, ConvertOptions{});
    REQUIRE_FALSE(summary.ok());
    CHECK(summary.status().code() == StatusCode::kIOError);
    CHECK_THAT(summary.status().message(),
               Catch::StartsWith("cannot create " + ShardTempPath(out + "/part-00001.mrs")));
    CHECK(Names(out) ==
          std::vector<std::string>{".part-00001.mrs.tmp." + std::to_string(::getpid())});
  }
  SECTION("an output folder that cannot be written") {
    if (::geteuid() == 0) return;  // root writes anyway
    fs::create_directories(out);
    ::chmod(out.c_str(), 0500);
    auto summary = ConvertToShards(text, out, ConvertOptions{});
    ::chmod(out.c_str(), 0700);
    REQUIRE_FALSE(summary.ok());
    CHECK_THAT(summary.status().message(),
               Catch::StartsWith("cannot create " + ShardTempPath(out + "/part-0000")) &&
                   Catch::EndsWith(": Permission denied"));
    CHECK(Names(out).empty());
  }
  SECTION("a bad record") {
    DatasetSpec failing = text;
    failing.on_bad_record = BadRecordPolicy::kFail;
    auto summary = ConvertToShards(failing, out, ConvertOptions{});
    REQUIRE_FALSE(summary.ok());
    CHECK_THAT(summary.status().message(), Catch::StartsWith(text.path + ":9: "));
    CHECK(Names(out).empty());
  }
}

TEST_CASE("convert refuses a folder that holds files and a source that is already shards",
          "[data]") {
  TempDir dir;
  const DatasetSpec text = SmallLibsvmForTest(dir.path(), 10, 1);
  dir.Write("out/old.mrs", "x");
  auto into_full = ConvertToShards(text, dir.File("out"), ConvertOptions{});
  REQUIRE_FALSE(into_full.ok());
  CHECK(into_full.status().message() ==
        dir.File("out") + " is not empty (it holds old.mrs): convert into a new or empty folder");
  DatasetSpec shards = ConvertForTest(text, dir.File("s"));
  auto again = ConvertToShards(shards, dir.File("t"), ConvertOptions{});
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().message() ==
        dir.File("s") + ": already shards; convert reads libsvm, csv or idx");
}

TEST_CASE("a shard set records its source spec and gives it back", "[data]") {
  DatasetSpec csv;
  csv.path = "t.csv";
  csv.format = DataFormat::kCsv;
  csv.delimiter = '\t';
  csv.label_kind = LabelKind::kClass;
  csv.num_classes = 10;
  CHECK(DescribeSpecFields(SourceSpecFields(csv)) ==
        "{format=csv, path=t.csv, partitions=1, on_bad_record=fail, header=false, "
        "label_column=0, delimiter=\t, features=0, zero_based=false, labels=, scale=0, "
        "max_decoded_mb=1024, label_rule=classes<10}");
  TempDir dir;
  DatasetSpec text = SmallLibsvmForTest(dir.path(), 10, 2);
  text.zero_based = true;
  text.num_features = 100;
  text.scale = 0.1;
  auto source = ReadShardSourceSpec(ConvertForTest(text, dir.File("s")));
  REQUIRE(source.ok());
  CHECK(source->path == text.path);
  CHECK(source->format == DataFormat::kLibsvm);
  CHECK(source->num_partitions == 2);
  CHECK(source->on_bad_record == BadRecordPolicy::kSkip);
  CHECK(source->zero_based);
  CHECK(source->num_features == 100);
  CHECK(source->scale == 0.1);
}

}  // namespace
}  // namespace mrtrain::data
