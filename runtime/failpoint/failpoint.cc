#include "runtime/failpoint/failpoint.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <climits>

#include "engine/base/log.h"

namespace mrtrain::runtime::failpoint {
namespace {

constexpr int kDefaultCrashCode = 86;  // not a signal's 128+n, so tests can tell it apart

// An entry's coordinates; -1 or an empty worker is a wildcard. Unlike Coordinates, attempt is
// int64_t so every integer key can be set through one member-pointer table.
struct Pattern {
  std::string worker;
  int64_t epoch = -1, round = -1, partition = -1, shard = -1, attempt = -1;
};

struct IntegerKey {
  const char* name;
  int64_t Pattern::*field;
};
constexpr IntegerKey kIntegerKeys[] = {
    {"epoch", &Pattern::epoch}, {"round", &Pattern::round},     {"partition", &Pattern::partition},
    {"shard", &Pattern::shard}, {"attempt", &Pattern::attempt},
};

// One parsed entry, constant after parsing except for `fired`. Not movable (the counter is
// atomic), so configurations hold unique_ptrs.
struct Entry {
  std::string text;  // as written, for log lines
  std::string name;
  Action action = Action::kNone;
  std::optional<int64_t> arg;  // crash: exit code; hang, delay: milliseconds
  Pattern pattern;
  int64_t times = -1;  // -1: unlimited
  mutable std::atomic<int64_t> fired{0};
};

using Config = std::vector<std::unique_ptr<const Entry>>;

// Hit() checks `g_armed` first so unconfigured processes pay one relaxed load. The registry
// is leaked so a Hit() from a thread still running at exit never sees a destroyed mutex.
std::atomic<bool> g_armed{false};

struct Registry {
  std::mutex mu;
  std::shared_ptr<const Config> config;  // guarded by mu; null when nothing is configured
};

Registry& GetRegistry() {
  static auto* registry = new Registry;
  return *registry;
}

std::shared_ptr<const Config> CurrentConfig() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.config;
}

std::string_view Trim(std::string_view s) {
  const char* kSpace = " \t\r\n";
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::optional<int64_t> ParseNonNegative(std::string_view s) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || value < 0) {
    return std::nullopt;
  }
  return value;
}

const char* ActionName(Action action) {
  switch (action) {
    case Action::kNone:
      return "none";
    case Action::kCrash:
      return "crash";
    case Action::kHang:
      return "hang";
    case Action::kDelay:
      return "delay";
    case Action::kDrop:
      return "drop";
    case Action::kCorrupt:
      return "corrupt";
  }
  return "?";
}

Status ParseName(std::string_view name, Entry* entry) {
  bool well_formed = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
  if (!well_formed) {
    return InvalidArgumentError("failpoint name " + Quote(name) +
                                " must be non-empty and use only a-z, 0-9 and '-'");
  }
  const auto& known = KnownFailpoints();
  if (std::find(known.begin(), known.end(), name) == known.end()) {
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    return InvalidArgumentError("unknown failpoint " + Quote(name) + "; known failpoints are " +
                                list);
  }
  entry->name = std::string(name);
  return Status::Ok();
}

// Checks `arg` (the text between the parentheses, if any) against what `entry->action` takes.
Status ParseArgument(std::optional<std::string_view> arg, Entry* entry) {
  const std::string action = ActionName(entry->action);
  if (!arg) {
    if (entry->action == Action::kDelay) {
      return InvalidArgumentError("delay needs milliseconds, e.g. delay(250)");
    }
    return Status::Ok();
  }
  if (entry->action == Action::kDrop || entry->action == Action::kCorrupt) {
    return InvalidArgumentError(action + " takes no argument, got (" + std::string(*arg) + ")");
  }
  entry->arg = ParseNonNegative(*arg);
  if (entry->action == Action::kCrash) {
    if (!entry->arg || *entry->arg < 1 || *entry->arg > 255) {
      return InvalidArgumentError("crash takes an exit code 1..255, got " + Quote(*arg));
    }
  } else if (!entry->arg) {
    return InvalidArgumentError(action + " takes milliseconds (a non-negative integer), got " +
                                Quote(*arg));
  }
  return Status::Ok();
}

// `text` is ACTION or ACTION(ARG).
Status ParseAction(std::string_view text, Entry* entry) {
  std::optional<std::string_view> arg;
  std::string_view word = text;
  if (size_t open = text.find('('); open != std::string_view::npos) {
    if (text.back() != ')') {
      return InvalidArgumentError("action " + Quote(text) + " has \"(\" without a closing \")\"");
    }
    word = text.substr(0, open);
    arg = text.substr(open + 1, text.size() - open - 2);
  }
  static const std::pair<const char*, Action> kActions[] = {
      {"crash", Action::kCrash}, {"hang", Action::kHang},       {"delay", Action::kDelay},
      {"drop", Action::kDrop},   {"corrupt", Action::kCorrupt},
  };
  for (const auto& [name, action] : kActions) {
    if (word == name) entry->action = action;
  }
  if (entry->action == Action::kNone) {
    return InvalidArgumentError("unknown action " + Quote(word) +
                                "; expected crash, hang, delay, drop or corrupt");
  }
  return ParseArgument(arg, entry);
}

Status ParseIntegerKey(std::string_view key, std::string_view value, int64_t* out) {
  if (*out != -1) return InvalidArgumentError("key " + Quote(key) + " given twice");
  std::optional<int64_t> n = ParseNonNegative(value);
  if (!n || (key == "attempt" && *n > INT_MAX) || (key == "times" && *n == 0)) {
    const char* expected = key == "times" ? "a positive integer" : "a non-negative integer";
    return InvalidArgumentError("key " + Quote(key) + " needs " + expected + ", got " +
                                Quote(value));
  }
  *out = *n;
  return Status::Ok();
}

Status ParseKeyValue(std::string_view item, Entry* entry) {
  size_t eq = item.find('=');
  if (eq == std::string_view::npos) {
    return InvalidArgumentError("expected KEY=VALUE after \"@\", got " + Quote(item));
  }
  std::string_view key = item.substr(0, eq);
  std::string_view value = item.substr(eq + 1);
  if (key == "worker") {
    if (!entry->pattern.worker.empty()) return InvalidArgumentError("key \"worker\" given twice");
    if (value.empty()) return InvalidArgumentError("key \"worker\" needs a worker name");
    entry->pattern.worker = std::string(value);
    return Status::Ok();
  }
  if (key == "times") return ParseIntegerKey(key, value, &entry->times);
  for (const auto& k : kIntegerKeys) {
    if (key == k.name) return ParseIntegerKey(key, value, &(entry->pattern.*k.field));
  }
  return InvalidArgumentError("unknown key " + Quote(key) +
                              "; expected worker, epoch, round, partition, shard, attempt or "
                              "times");
}

Result<std::unique_ptr<const Entry>> ParseEntry(std::string_view text) {
  auto entry = std::make_unique<Entry>();
  entry->text = std::string(text);
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) return InvalidArgumentError("expected NAME=ACTION");
  MRTRAIN_RETURN_IF_ERROR(ParseName(text.substr(0, eq), entry.get()));
  std::string_view rest = text.substr(eq + 1);
  size_t at = rest.find('@');
  MRTRAIN_RETURN_IF_ERROR(ParseAction(rest.substr(0, at), entry.get()));
  if (at != std::string_view::npos) {
    for (std::string_view item : Split(rest.substr(at + 1), ',')) {
      MRTRAIN_RETURN_IF_ERROR(ParseKeyValue(item, entry.get()));
    }
  }
  return std::unique_ptr<const Entry>(std::move(entry));
}

Result<Config> ParseSpec(std::string_view spec) {
  Config config;
  std::vector<std::string_view> texts = Split(spec, ';');
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string_view text = Trim(texts[i]);
    if (text.empty()) continue;
    Result<std::unique_ptr<const Entry>> entry = ParseEntry(text);
    if (!entry.ok()) {
      return entry.status().WithContext("failpoint entry " + std::to_string(i + 1) + " " +
                                        Quote(text));
    }
    config.push_back(std::move(entry).value());
  }
  return config;
}

bool Matches(const Pattern& p, const Coordinates& at) {
  auto want = [](int64_t wanted, int64_t given) { return wanted == -1 || wanted == given; };
  return (p.worker.empty() || p.worker == at.worker) && want(p.epoch, at.epoch) &&
         want(p.round, at.round) && want(p.partition, at.partition) && want(p.shard, at.shard) &&
         want(p.attempt, at.attempt);
}

// Claims one firing of `entry`. A compare-exchange rather than fetch_add, so that concurrent
// hits never push the count past `times`.
bool TryClaim(const Entry& entry) {
  int64_t fired = entry.fired.load(std::memory_order_relaxed);
  do {
    if (entry.times != -1 && fired >= entry.times) return false;
  } while (!entry.fired.compare_exchange_weak(fired, fired + 1, std::memory_order_relaxed));
  return true;
}

std::string Describe(const Coordinates& at) {
  std::string out;
  auto add = [&out](const char* key, const std::string& value) {
    out += (out.empty() ? "" : " ") + std::string(key) + "=" + value;
  };
  if (!at.worker.empty()) add("worker", at.worker);
  if (at.epoch != -1) add("epoch", std::to_string(at.epoch));
  if (at.round != -1) add("round", std::to_string(at.round));
  if (at.partition != -1) add("partition", std::to_string(at.partition));
  if (at.shard != -1) add("shard", std::to_string(at.shard));
  if (at.attempt != -1) add("attempt", std::to_string(at.attempt));
  return out.empty() ? "(no coordinates)" : out;
}

[[noreturn]] void Crash(const Entry& entry, const Coordinates& at) {
  int code = static_cast<int>(entry.arg.value_or(kDefaultCrashCode));
  auto log = Logger("failpoint");
  log->error("failpoint {} fired at {} ({}): exiting with code {}", entry.name, Describe(at),
             entry.text, code);
  log->flush();  // only our own line, so the test log says why the process died
  std::_Exit(code);
}

void Sleep(const Entry& entry, const Coordinates& at) {
  auto log = Logger("failpoint");
  if (!entry.arg) {
    log->warn("failpoint {} fired at {} ({}): hanging until killed", entry.name, Describe(at),
              entry.text);
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }
  log->warn("failpoint {} fired at {} ({}): sleeping {} ms", entry.name, Describe(at), entry.text,
            *entry.arg);
  std::this_thread::sleep_for(std::chrono::milliseconds(*entry.arg));
}

Action Fire(const Entry& entry, const Coordinates& at) {
  if (entry.action == Action::kCrash) Crash(entry, at);
  if (entry.action == Action::kHang || entry.action == Action::kDelay) {
    Sleep(entry, at);
  } else {
    Logger("failpoint")
        ->warn("failpoint {} fired at {} ({}): {}", entry.name, Describe(at), entry.text,
               ActionName(entry.action));
  }
  return entry.action;
}

}  // namespace

const std::vector<std::string>& KnownFailpoints() {
  static const auto* known = new std::vector<std::string>{
      "map-after-compute",    "shuffle-mid-send",  "reduce-before-commit",
      "checkpoint-mid-write", "pull-before-reply", "predict-after-write",
  };
  return *known;
}

Status Configure(const std::string& spec) {
  Result<Config> parsed = ParseSpec(spec);
  if (!parsed.ok()) return parsed.status();
  std::shared_ptr<const Config> config;
  if (!parsed->empty()) config = std::make_shared<const Config>(std::move(parsed).value());
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.config = std::move(config);
  g_armed.store(r.config != nullptr, std::memory_order_relaxed);
  return Status::Ok();
}

Status ConfigureFromEnv() {
  const char* spec = std::getenv("MRTRAIN_FAILPOINTS");
  if (spec == nullptr) return Status::Ok();
  Status status = Configure(spec);
  if (!status.ok()) return status.WithContext("MRTRAIN_FAILPOINTS");
  return status;
}

Action Hit(std::string_view name, const Coordinates& at) {
  if (!g_armed.load(std::memory_order_relaxed)) return Action::kNone;
  // Holding the shared_ptr keeps the entries alive while this thread sleeps, even if another
  // thread calls Configure() meanwhile.
  std::shared_ptr<const Config> config = CurrentConfig();
  if (config == nullptr) return Action::kNone;
  for (const auto& entry : *config) {
    if (entry->name == name && Matches(entry->pattern, at) && TryClaim(*entry)) {
      return Fire(*entry, at);
    }
  }
  return Action::kNone;
}

void CorruptByte(std::string* bytes) {
  if (bytes->empty()) return;
  (*bytes)[bytes->size() / 2] ^= 0x5A;
}

int64_t FiredCount(std::string_view name) {
  std::shared_ptr<const Config> config = CurrentConfig();
  if (config == nullptr) return 0;
  int64_t total = 0;
  for (const auto& entry : *config) {
    if (entry->name == name) total += entry->fired.load(std::memory_order_relaxed);
  }
  return total;
}

}  // namespace mrtrain::runtime::failpoint
