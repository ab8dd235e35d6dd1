#include "runtime/master/job_journal.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "runtime/checkpoint/atomic_file.h"

namespace mrtrain::runtime {
namespace {

Result<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::string JobJournal::JobPath(uint64_t id) const {
  return dir_ + "/job-" + std::to_string(id) + ".msg";
}

Status JobJournal::AddJob(uint64_t id, const msg::JobSpecText& text) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return IOError("cannot create the master's state folder " + dir_ + ": " + ec.message());
  MRTRAIN_ASSIGN_OR_RETURN(std::string bytes, msg::Encode(text));
  return WriteFileAtomically(JobPath(id), bytes);
}

void JobJournal::RemoveJob(uint64_t id) { std::remove(JobPath(id).c_str()); }

Status JobJournal::WriteState(uint64_t next_job_id, const std::vector<JournalEntry>& unfinished) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return IOError("cannot create the master's state folder " + dir_ + ": " + ec.message());
  nlohmann::json j;
  j["version"] = 1;
  j["next_job_id"] = next_job_id;
  j["jobs"] = nlohmann::json::array();
  for (const JournalEntry& e : unfinished) {
    j["jobs"].push_back({{"id", e.id}, {"state", e.state}, {"epochs_done", e.epochs_done}});
  }
  return WriteFileAtomically(dir_ + "/state.json", j.dump(2) + "\n");
}

Result<JobJournal::Recovered> JobJournal::Load() const {
  Recovered out;
  const std::string state_path = dir_ + "/state.json";
  if (!std::filesystem::exists(state_path)) return out;
  MRTRAIN_ASSIGN_OR_RETURN(std::string text, ReadAll(state_path));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& what) {
    return CorruptionError(state_path + ": " + what);
  };
  // Every value's type is checked before it is read: nlohmann's getters throw on a wrong type
  // and convert out-of-range numbers with undefined behaviour.
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("version") || !j["version"].is_number_unsigned() ||
      j["version"].get<uint64_t>() != 1) {
    return bad("key version: expected 1");
  }
  if (!j.contains("next_job_id") || !j["next_job_id"].is_number_unsigned()) {
    return bad("key next_job_id: expected a non-negative integer");
  }
  out.next_job_id = j["next_job_id"].get<uint64_t>();
  if (!j.contains("jobs") || !j["jobs"].is_array()) return bad("key jobs: expected a list");
  for (const auto& e : j["jobs"]) {
    if (!e.is_object() || !e.contains("id") || !e["id"].is_number_unsigned() ||
        !e.contains("state") || !e["state"].is_string()) {
      return bad("each of jobs needs an id (integer) and a state (string)");
    }
    JournalEntry entry;
    entry.id = e["id"].get<uint64_t>();
    entry.state = e["state"].get<std::string>();
    if (entry.state != "queued" && entry.state != "running") {
      return bad("job " + std::to_string(entry.id) + ": state \"" + entry.state +
                 "\" (expected queued or running)");
    }
    // Ascending and below the largest id, so each job is queued once and next_job_id exceeds
    // every id.
    if (entry.id == UINT64_MAX || (!out.jobs.empty() && entry.id <= out.jobs.back().id)) {
      return bad("job ids must be ascending, each below 2^64-1; got " + std::to_string(entry.id));
    }
    if (e.contains("epochs_done")) {
      if (!e["epochs_done"].is_number_unsigned() ||
          e["epochs_done"].get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return bad("job " + std::to_string(entry.id) + ": epochs_done: expected an integer >= 0");
      }
      entry.epochs_done = static_cast<int64_t>(e["epochs_done"].get<uint64_t>());
    }
    MRTRAIN_ASSIGN_OR_RETURN(std::string bytes, ReadAll(JobPath(entry.id)));
    auto spec = msg::DecodeAs<msg::JobSpecText>(bytes);
    if (!spec.ok()) return spec.status().WithContext(JobPath(entry.id));
    if (entry.id >= out.next_job_id) out.next_job_id = entry.id + 1;
    out.jobs.push_back(entry);
    out.texts.push_back(std::move(*spec));
  }
  return out;
}

}  // namespace mrtrain::runtime
