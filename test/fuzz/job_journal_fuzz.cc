// libFuzzer target for the master's job journal reader (runtime/master/job_journal.h:
// JobJournal::Load), which a master started with --recover runs on the files a crashed master
// left behind: state.json (nlohmann::json) and each job's spec message (Boost.Serialization).
//
// Input: state.json up to the first NUL byte; after it, if there is one, a job's spec file,
// named job-<id>.msg for the job_id of the JobSpecText it holds (job-1.msg if it holds none).
//
// Checks: Load returns a Status and lets no exception out; an error says what is wrong; what
// loads keeps Recovered's contract (one text per job, ascending ids, next_job_id past every
// id), and written back with WriteState and AddJob it loads again the same.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "engine/base/check.h"
#include "engine/base/status.h"
#include "runtime/master/job_journal.h"
#include "runtime/protocol/messages.h"
#include "test/fuzz/scratch_files.h"

namespace {

using mrtrain::runtime::JobJournal;
namespace msg = mrtrain::runtime::msg;

// The journal's name for a job file holding `bytes`: a master writes the spec of job N, whose
// job_id is N, to job-N.msg.
std::string JobFileName(std::string_view bytes) {
  mrtrain::Result<msg::JobSpecText> text = msg::DecodeAs<msg::JobSpecText>(bytes);
  return "job-" + std::to_string(text.ok() ? text->job_id : 1) + ".msg";
}

// Load, aborting with the exception's message if one escapes: Load's contract is a Status.
mrtrain::Result<JobJournal::Recovered> LoadOrAbort(const JobJournal& journal) {
  try {
    return journal.Load();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "JobJournal::Load threw: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "JobJournal::Load threw something not a std::exception\n");
  }
  std::abort();
}

std::string EncodeOrAbort(const msg::JobSpecText& text) {
  mrtrain::Result<std::string> bytes = msg::Encode(text);
  MRTRAIN_CHECK(bytes.ok());
  return *bytes;
}

void CheckContract(const JobJournal::Recovered& r) {
  MRTRAIN_CHECK(r.texts.size() == r.jobs.size());
  for (size_t i = 0; i < r.jobs.size(); ++i) {
    MRTRAIN_CHECK(i == 0 || r.jobs[i - 1].id < r.jobs[i].id);
    MRTRAIN_CHECK(r.jobs[i].id < r.next_job_id);
  }
}

bool Same(const JobJournal::Recovered& a, const JobJournal::Recovered& b) {
  if (a.next_job_id != b.next_job_id || a.jobs.size() != b.jobs.size()) return false;
  for (size_t i = 0; i < a.jobs.size(); ++i) {
    if (a.jobs[i].id != b.jobs[i].id || a.jobs[i].state != b.jobs[i].state ||
        a.jobs[i].epochs_done != b.jobs[i].epochs_done ||
        EncodeOrAbort(a.texts[i]) != EncodeOrAbort(b.texts[i])) {
      return false;
    }
  }
  return true;
}

// Writes `r` as a master would and requires Load to give it back.
void CheckRewrite(const JobJournal::Recovered& r) {
  JobJournal journal(mrtrain::fuzz::ResetScratchFolder("rewritten"));
  for (size_t i = 0; i < r.jobs.size(); ++i) {
    MRTRAIN_CHECK(journal.AddJob(r.jobs[i].id, r.texts[i]).ok());
  }
  MRTRAIN_CHECK(journal.WriteState(r.next_job_id, r.jobs).ok());
  mrtrain::Result<JobJournal::Recovered> again = LoadOrAbort(journal);
  MRTRAIN_CHECK(again.ok());
  MRTRAIN_CHECK(Same(*again, r));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string dir = mrtrain::fuzz::ResetScratchFolder("journal");
  mrtrain::fuzz::WriteScratchFile("journal/state.json", std::string(input.substr(0, nul)));
  if (nul != std::string_view::npos) {
    const std::string_view job = input.substr(nul + 1);
    mrtrain::fuzz::WriteScratchFile("journal/" + JobFileName(job), std::string(job));
  }

  JobJournal journal(dir);
  mrtrain::Result<JobJournal::Recovered> loaded = LoadOrAbort(journal);
  if (!loaded.ok()) {
    MRTRAIN_CHECK(loaded.status().message().find(dir) != std::string::npos);
    return 0;
  }
  CheckContract(*loaded);
  CheckRewrite(*loaded);
  return 0;
}
