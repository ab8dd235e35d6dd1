#include "engine/data/dataset.h"

#include <filesystem>

#include <catch2/catch.hpp>

#include "test/testing/temp_dir.h"

namespace mrtrain::data {
namespace {

using testing::TempDir;

TEST_CASE("data formats parse from their names and back", "[data]") {
  for (const char* name : {"libsvm", "csv", "idx", "shards", "criteo"}) {
    auto format = ParseDataFormat(name);
    REQUIRE(format.ok());
    CHECK(std::string(DataFormatName(*format)) == name);
  }
  auto bad = ParseDataFormat("parquet");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message() ==
        "unknown data format 'parquet': expected one of libsvm, csv, idx, shards, criteo");
}

TEST_CASE("a plain path resolves to itself", "[data]") {
  TempDir dir;
  std::string a = dir.Write("a.csv", "1,2\n");
  auto files = ResolveFiles(a);
  REQUIRE(files.ok());
  CHECK(*files == std::vector<std::string>{a});
}

TEST_CASE("a glob resolves to the matching regular files in byte order", "[data]") {
  TempDir dir;
  dir.Write("part-10.csv", "");
  dir.Write("part-2.csv", "");
  dir.Write("Part-3.csv", "");
  dir.Write("other.txt", "");
  std::filesystem::create_directories(dir.File("part-dir.csv"));
  auto files = ResolveFiles(dir.File("*art-?*.csv"));
  REQUIRE(files.ok());
  CHECK(*files == std::vector<std::string>{dir.File("Part-3.csv"), dir.File("part-10.csv"),
                                           dir.File("part-2.csv")});
  auto bracket = ResolveFiles(dir.File("part-[12]*.csv"));
  REQUIRE(bracket.ok());
  CHECK(bracket->size() == 2);
}

TEST_CASE("a folder resolves to its data files, without markers, hidden files or subfolders",
          "[data]") {
  TempDir dir;
  dir.Write("out/part-00001", "");
  dir.Write("out/part-00000", "");
  dir.Write("out/_SUCCESS", "");
  dir.Write("out/.part-00000.crc", "");
  dir.Write("out/nested/part-00002", "");
  auto files = ResolveFiles(dir.File("out"));
  REQUIRE(files.ok());
  CHECK(*files == std::vector<std::string>{dir.File("out/part-00000"), dir.File("out/part-00001")});
}

TEST_CASE("paths that name nothing are not found", "[data]") {
  TempDir dir;
  dir.Write("empty/_SUCCESS", "");
  SECTION("missing file") {
    auto files = ResolveFiles(dir.File("missing.csv"));
    REQUIRE_FALSE(files.ok());
    CHECK(files.status().code() == StatusCode::kNotFound);
    CHECK(files.status().message() == dir.File("missing.csv") + ": no such file or folder");
  }
  SECTION("glob without matches") {
    auto files = ResolveFiles(dir.File("*.libsvm"));
    REQUIRE_FALSE(files.ok());
    CHECK(files.status().code() == StatusCode::kNotFound);
    CHECK(files.status().message() == dir.File("*.libsvm") + ": no file matches");
  }
  SECTION("folder without data files") {
    auto files = ResolveFiles(dir.File("empty"));
    REQUIRE_FALSE(files.ok());
    CHECK(files.status().code() == StatusCode::kNotFound);
  }
}

TEST_CASE("open rejects specs that cannot work", "[data]") {
  TempDir dir;
  DatasetSpec spec;
  spec.path = dir.Write("a.csv", "1,2\n");
  SECTION("no partitions") {
    spec.num_partitions = 0;
    auto dataset = Dataset::Open(spec);
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("missing file") {
    spec.path = dir.File("b.csv");
    auto dataset = Dataset::Open(spec);
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kNotFound);
  }
  SECTION("newline delimiter") {
    spec.delimiter = '\n';
    auto dataset = Dataset::Open(spec);
    REQUIRE_FALSE(dataset.ok());
    CHECK(dataset.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a dataset keeps its spec and files", "[data]") {
  TempDir dir;
  DatasetSpec spec;
  spec.path = dir.File("*.csv");
  spec.num_partitions = 3;
  dir.Write("b.csv", "1,2\n");
  dir.Write("a.csv", "3,4\n");
  auto dataset = Dataset::Open(spec);
  REQUIRE(dataset.ok());
  CHECK((*dataset)->num_partitions() == 3);
  CHECK((*dataset)->spec().path == spec.path);
  CHECK((*dataset)->files() == std::vector<std::string>{dir.File("a.csv"), dir.File("b.csv")});
}

}  // namespace
}  // namespace mrtrain::data
