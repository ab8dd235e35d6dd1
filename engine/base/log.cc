#include "engine/base/log.h"

#include <time.h>

#include <cstdio>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace mrtrain {
namespace {

std::mutex& LevelMutex() {
  static std::mutex mu;
  return mu;
}

spdlog::level::level_enum& CurrentLevel() {
  static spdlog::level::level_enum level = spdlog::level::info;
  return level;
}

bool& JsonFormat() {
  static bool json = false;
  return json;
}

struct Process {
  std::string role, worker;
};
Process& ThisProcess() {
  static Process process;
  return process;
}

struct ThreadJob {
  uint64_t job = 0;
  int64_t epoch = 0, round = 0;
};
thread_local ThreadJob thread_job;

// The length of the valid UTF-8 sequence at s[i], 0 if there is none.
size_t Utf8Length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// A JSON string; bytes that are not UTF-8 (a message quoting a bad record) become U+FFFD, so
// every line stays valid JSON.
void AppendJsonString(const std::string& s, std::string* out) {
  *out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      *out += buf;
      ++i;
    } else if (c < 0x80) {
      *out += static_cast<char>(c);
      ++i;
    } else if (const size_t n = Utf8Length(s, i); n > 0) {
      out->append(s, i, n);
      i += n;
    } else {
      *out += "\\ufffd";
      ++i;
    }
  }
  *out += '"';
}

// One json object per line (SetLogFormat).
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000);
    tm utc;
    gmtime_r(&seconds, &utc);
    char time[96];  // 24 in practice; room for what the compiler cannot rule out
    std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        LogJsonLine(time, std::string(level.data(), level.size()),
                    std::string(msg.logger_name.data(), msg.logger_name.size()),
                    std::string(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

void ApplyFormat(spdlog::logger& logger) {
  if (JsonFormat()) {
    logger.set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger.set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");
  }
}

}  // namespace

std::string LogJsonLine(const std::string& time, const std::string& level,
                        const std::string& logger, const std::string& message) {
  std::string out = "{\"time\":";
  AppendJsonString(time, &out);
  out += ",\"level\":";
  AppendJsonString(level, &out);
  out += ",\"logger\":";
  AppendJsonString(logger, &out);
  out += ",\"msg\":";
  AppendJsonString(message, &out);
  const Process& process = ThisProcess();
  if (!process.role.empty()) {
    out += ",\"process\":";
    AppendJsonString(process.role, &out);
  }
  if (!process.worker.empty()) {
    out += ",\"worker\":";
    AppendJsonString(process.worker, &out);
  }
  if (thread_job.job != 0) out += ",\"job\":" + std::to_string(thread_job.job);
  if (thread_job.epoch > 0) out += ",\"epoch\":" + std::to_string(thread_job.epoch);
  if (thread_job.round > 0) out += ",\"round\":" + std::to_string(thread_job.round);
  out += '}';
  return out;
}

bool SetLogFormat(const std::string& format) {
  if (format != "text" && format != "json") return false;
  std::lock_guard<std::mutex> lock(LevelMutex());
  JsonFormat() = format == "json";
  spdlog::apply_all([](std::shared_ptr<spdlog::logger> l) { ApplyFormat(*l); });
  return true;
}

void SetLogProcess(const std::string& role, const std::string& worker) {
  ThisProcess() = Process{role, worker};
}

ScopedLogJob::ScopedLogJob(uint64_t job)
    : job_(thread_job.job), epoch_(thread_job.epoch), round_(thread_job.round) {
  thread_job = ThreadJob{job, 0, 0};
}

ScopedLogJob::~ScopedLogJob() { thread_job = ThreadJob{job_, epoch_, round_}; }

void SetLogRound(int64_t epoch, int64_t round) {
  thread_job.epoch = epoch;
  thread_job.round = round;
}

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  std::lock_guard<std::mutex> lock(LevelMutex());
  auto logger = spdlog::get(component);
  if (logger) return logger;
  logger = spdlog::stderr_color_mt(component);
  logger->set_level(CurrentLevel());
  ApplyFormat(*logger);
  return logger;
}

bool SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  std::lock_guard<std::mutex> lock(LevelMutex());
  CurrentLevel() = parsed;
  spdlog::apply_all([parsed](std::shared_ptr<spdlog::logger> l) { l->set_level(parsed); });
  return true;
}

}  // namespace mrtrain
