#include "runtime/checkpoint/checkpoint_dir.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include "engine/base/check.h"
#include "engine/base/log.h"

namespace mrtrain::runtime {
namespace {

constexpr char kPrefix[] = "ckpt-";
constexpr char kSuffix[] = ".mrt";

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

CheckpointDir::CheckpointDir(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {
  MRTRAIN_CHECK(keep_ >= 1);
}

std::string CheckpointDir::FileName(int64_t epochs_done) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%06" PRId64 "%s", kPrefix, epochs_done, kSuffix);
  return buf;
}

std::optional<int64_t> CheckpointDir::ParseFileName(const std::string& name) {
  const size_t prefix = sizeof(kPrefix) - 1, suffix = sizeof(kSuffix) - 1;
  constexpr size_t kMaxDigits = 18;  // stays within int64_t
  if (name.size() <= prefix + suffix || name.size() > prefix + kMaxDigits + suffix) {
    return std::nullopt;
  }
  int64_t epochs = 0;
  for (size_t i = prefix; i < name.size() - suffix; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    epochs = epochs * 10 + (name[i] - '0');
  }
  // Only the canonical spelling counts, so one epoch never has two files.
  if (FileName(epochs) != name) return std::nullopt;
  return epochs;
}

std::vector<std::string> CheckpointDir::List() const {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (auto epochs = ParseFileName(name)) found.emplace_back(*epochs, JoinPath(dir_, name));
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  paths.reserve(found.size());
  for (auto& entry : found) paths.push_back(std::move(entry.second));
  return paths;
}

Status CheckpointDir::Save(const Checkpoint& ckpt) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return IOError("cannot create checkpoint directory " + dir_ + ": " + ec.message());
  const std::string path = JoinPath(dir_, FileName(ckpt.epochs_done));
  MRTRAIN_RETURN_IF_ERROR(WriteCheckpointFile(path, ckpt));
  Logger("checkpoint")->debug("wrote {} (epoch {})", path, ckpt.epochs_done);
  Prune();
  return Status::Ok();
}

void CheckpointDir::Prune() const {
  const std::vector<std::string> paths = List();
  const size_t excess = paths.size() > static_cast<size_t>(keep_) ? paths.size() - keep_ : 0;
  for (size_t i = 0; i < excess; ++i) {
    std::error_code ec;
    // A leftover old checkpoint wastes disk but harms nothing: the next save tries again.
    if (!std::filesystem::remove(paths[i], ec) && ec) {
      Logger("checkpoint")->warn("cannot delete old checkpoint {}: {}", paths[i], ec.message());
    }
  }
}

Result<Checkpoint> CheckpointDir::LoadLatest() const {
  const std::vector<std::string> paths = List();
  std::string tried;
  for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
    Result<Checkpoint> ckpt = ReadCheckpointFile(*it);
    if (ckpt.ok()) return ckpt;
    const Status& error = ckpt.status();
    // kNotFound: deleted since List(), e.g. by a concurrent Prune(); nothing to report.
    if (error.code() != StatusCode::kCorruption && error.code() != StatusCode::kNotFound) {
      return error;
    }
    if (error.code() == StatusCode::kCorruption) {
      // The message starts with the file's path.
      Logger("checkpoint")
          ->warn("skipping damaged checkpoint {}; falling back to the previous one",
                 error.message());
    }
    tried += (tried.empty() ? "" : "; ") + error.message();
  }
  if (paths.empty()) return NotFoundError("no checkpoint in " + dir_);
  return NotFoundError("no valid checkpoint in " + dir_ + "; tried: " + tried);
}

}  // namespace mrtrain::runtime
