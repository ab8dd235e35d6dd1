// Writes the seeds of corpus/kept_output_fuzz and corpus/job_journal_fuzz with the real writers
// (README.md), so they follow the formats as the code writes them:
//   bazel run //test/fuzz:make_recovery_seeds -- $PWD/test/fuzz/corpus
// Kept output: spill files of a MapOutputStore with no memory budget, each as a whole file
// ("\0" mode byte) and without its CRC32C ("\1": the fuzz target appends a valid one). Journal:
// state.json from WriteState, a NUL, then the job-<id>.msg of AddJob.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/base/check.h"
#include "runtime/master/job_journal.h"
#include "runtime/protocol/messages.h"
#include "runtime/worker/map_output_store.h"
#include "test/testing/temp_dir.h"

namespace {

namespace fs = std::filesystem;
namespace msg = mrtrain::runtime::msg;
using mrtrain::runtime::JobJournal;
using mrtrain::runtime::JournalEntry;
using mrtrain::runtime::KeptOutput;
using mrtrain::testing::TempDir;

void Write(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  MRTRAIN_CHECK(out.good());
}

// The spill file a store with no memory budget writes for `output`.
std::string SpillFile(const KeptOutput& output) {
  TempDir tmp;
  const std::string spill_dir = tmp.File("spill");
  mrtrain::runtime::MapOutputStore store(0, spill_dir);
  store.Keep(1, 0, output);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(spill_dir)) files.push_back(e.path());
  MRTRAIN_CHECK(files.size() == 1);
  return TempDir::Read(files[0].string());
}

void WriteKeptSeeds(const fs::path& dir, const std::string& stem, const KeptOutput& output) {
  const std::string file = SpillFile(output);
  Write(dir / stem, '\0' + file);
  Write(dir / (stem + "_no_crc"), '\1' + file.substr(0, file.size() - 4));
}

msg::JobSpecText Spec(uint64_t job_id) {
  msg::JobSpecText text;
  text.job_id = job_id;
  text.yaml = "model: linear\ndata:\n  train: data/train.libsvm\n";
  text.source = "job.yaml";
  text.overrides = {"train.epochs=2"};
  text.working_dir = "/work";
  return text;
}

// state.json after WriteState(next_job_id, jobs), then a NUL and the job file of `job_id`
// (none when it is 0).
void WriteJournalSeed(const fs::path& path, uint64_t next_job_id,
                      const std::vector<JournalEntry>& jobs, uint64_t job_id) {
  TempDir tmp;
  JobJournal journal(tmp.File("state"));
  MRTRAIN_CHECK(journal.WriteState(next_job_id, jobs).ok());
  std::string seed = TempDir::Read(journal.dir() + "/state.json");
  if (job_id != 0) {
    MRTRAIN_CHECK(journal.AddJob(job_id, Spec(job_id)).ok());
    seed += '\0' + TempDir::Read(journal.dir() + "/job-" + std::to_string(job_id) + ".msg");
  }
  Write(path, seed);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path kept = fs::path(argv[1]) / "kept_output_fuzz";
  const fs::path journal = fs::path(argv[1]) / "job_journal_fuzz";
  fs::create_directories(kept);
  fs::create_directories(journal);

  KeptOutput three;
  three.stats = {12.5, 100, 87};
  for (std::string push :
       {std::string("\x01\x00\x02\x00", 4), std::string(), std::string(20, '\xff')}) {
    three.pushes.emplace_back(std::move(push));
  }
  WriteKeptSeeds(kept, "three_pushes", three);
  KeptOutput none;
  none.stats = {0, 0, 0};
  WriteKeptSeeds(kept, "no_pushes", none);

  WriteJournalSeed(journal / "empty", 1, {}, 0);
  WriteJournalSeed(journal / "queued_job", 2, {{1, "queued", 0}}, 1);
  WriteJournalSeed(journal / "running_job", 8, {{7, "running", 3}}, 7);
  WriteJournalSeed(journal / "missing_job_file", 5, {{3, "queued", 0}, {4, "running", 1}}, 3);
  return 0;
}
