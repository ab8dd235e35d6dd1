#include "runtime/master/job_journal.h"

#include <catch2/catch.hpp>
#include <string>

#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

msg::JobSpecText Spec(const std::string& yaml) {
  msg::JobSpecText t;
  t.yaml = yaml;
  t.source = "job.yaml";
  t.working_dir = "/data";
  t.plugin_bytes = {std::string("\x7f" "ELF\0bytes", 9)};
  t.plugin_sha256 = {std::string(64, 'a')};
  return t;
}

TEST_CASE("the journal gives back the unfinished jobs, their specs and the next id",
          "[runtime][master]") {
  testing::TempDir dir;
  JobJournal journal(dir.File("state"));
  REQUIRE(journal.Load().ok());  // nothing recorded yet: nothing to recover
  CHECK(journal.Load()->jobs.empty());
  REQUIRE(journal.AddJob(3, Spec("name: a")).ok());
  REQUIRE(journal.AddJob(5, Spec("name: b")).ok());
  REQUIRE(journal.AddJob(6, Spec("name: done")).ok());
  journal.RemoveJob(6);
  REQUIRE(journal.WriteState(7, {{3, "running", 2}, {5, "queued", 0}}).ok());

  Result<JobJournal::Recovered> r = JobJournal(dir.File("state")).Load();
  REQUIRE(r.ok());
  CHECK(r->next_job_id == 7);
  REQUIRE(r->jobs.size() == 2);
  CHECK(r->jobs[0].id == 3);
  CHECK(r->jobs[0].state == "running");
  CHECK(r->jobs[0].epochs_done == 2);
  CHECK(r->texts[0].yaml == "name: a");
  CHECK(r->texts[0].plugin_bytes == Spec("").plugin_bytes);
  CHECK(r->jobs[1].id == 5);
  CHECK(r->texts[1].yaml == "name: b");
}

TEST_CASE("a damaged journal is refused naming the file and the key", "[runtime][master]") {
  testing::TempDir dir;
  JobJournal journal(dir.File("state"));
  REQUIRE(journal.AddJob(1, Spec("name: a")).ok());
  auto load_with = [&](const std::string& state_json) {
    dir.Write("state/state.json", state_json);
    return journal.Load();
  };
  struct Case {
    const char* json;
    const char* says;
  };
  const Case cases[] = {
      {"not json", "not a JSON object"},
      {R"({"version":"1","next_job_id":2,"jobs":[]})", "key version"},
      {R"({"version":1e300,"next_job_id":2,"jobs":[]})", "key version"},
      {R"({"version":1,"next_job_id":-1,"jobs":[]})", "key next_job_id"},
      {R"({"version":1,"next_job_id":2,"jobs":{}})", "key jobs"},
      {R"({"version":1,"next_job_id":2,"jobs":[{"id":1,"state":"running","epochs_done":null}]})",
       "epochs_done"},
      {R"({"version":1,"next_job_id":2,"jobs":[{"id":1,"state":"running","epochs_done":1e300}]})",
       "epochs_done"},
      {R"({"version":1,"next_job_id":2,"jobs":[{"id":1,"state":"done"}]})", "state \"done\""},
      {R"({"version":1,"next_job_id":2,"jobs":[{"id":1,"state":"queued"},{"id":1,"state":"queued"}]})",
       "ascending"},
      {R"({"version":1,"next_job_id":2,"jobs":[{"id":18446744073709551615,"state":"queued"}]})",
       "ascending"},
  };
  for (const Case& c : cases) {
    INFO(c.json);
    Result<JobJournal::Recovered> r = load_with(c.json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK(r.status().message().find("state.json") != std::string::npos);
    CHECK(r.status().message().find(c.says) != std::string::npos);
  }
  // A listed job whose spec file is missing or damaged names that file.
  Result<JobJournal::Recovered> missing =
      load_with(R"({"version":1,"next_job_id":3,"jobs":[{"id":2,"state":"queued"}]})");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("job-2.msg") != std::string::npos);
  dir.Write("state/job-1.msg", "garbage");
  Result<JobJournal::Recovered> damaged =
      load_with(R"({"version":1,"next_job_id":3,"jobs":[{"id":1,"state":"queued"}]})");
  REQUIRE_FALSE(damaged.ok());
  CHECK(damaged.status().message().find("job-1.msg") != std::string::npos);
}

}  // namespace
}  // namespace mrtrain::runtime
