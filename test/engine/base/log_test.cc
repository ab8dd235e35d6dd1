#include "engine/base/log.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>

namespace mrtrain {
namespace {

TEST_CASE("a json log line escapes the message and stays valid JSON") {
  const std::string line = LogJsonLine("2026-01-02T03:04:05.006Z", "warning", "data",
                                       "bad \"row\"\n\t\\ \xff caf\xc3\xa9");
  CHECK(line ==
        "{\"time\":\"2026-01-02T03:04:05.006Z\",\"level\":\"warning\",\"logger\":\"data\","
        "\"msg\":\"bad \\\"row\\\"\\u000a\\u0009\\\\ \\ufffd caf\xc3\xa9\"}");
  const nlohmann::json j = nlohmann::json::parse(line);
  CHECK(j["msg"] == "bad \"row\"\n\t\\ \xef\xbf\xbd caf\xc3\xa9");
}

TEST_CASE("--log-format json: one object per line with the process, job, epoch and round") {
  std::ostringstream out;
  auto logger = Logger("log_test");
  logger->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  REQUIRE(!SetLogFormat("yaml"));
  REQUIRE(SetLogFormat("json"));
  SetLogProcess("worker", "w\"0");
  {
    ScopedLogJob job(3);
    logger->info("before the first round");
    SetLogRound(2, 5);
    logger->warn("in epoch {} round {}", 2, 5);
    std::thread([&] { logger->info("another thread"); }).join();
  }
  logger->info("after the job");
  REQUIRE(SetLogFormat("text"));
  SetLogProcess("");
  logger->info("text again");
  logger->sinks().pop_back();

  std::istringstream lines(out.str());
  std::string line;
  std::vector<nlohmann::json> parsed;
  while (std::getline(lines, line)) {
    if (line.find("text again") != std::string::npos) {
      CHECK(line.find(" info [log_test] text again") != std::string::npos);
      continue;
    }
    INFO(line);
    parsed.push_back(nlohmann::json::parse(line));
  }
  REQUIRE(parsed.size() == 4);
  CHECK(parsed[0]["msg"] == "before the first round");
  CHECK(parsed[0]["logger"] == "log_test");
  CHECK(parsed[0]["level"] == "info");
  CHECK(parsed[0]["process"] == "worker");
  CHECK(parsed[0]["worker"] == "w\"0");
  CHECK(parsed[0]["job"] == 3);
  CHECK(!parsed[0].contains("epoch"));
  CHECK(parsed[1]["level"] == "warning");
  CHECK(parsed[1]["epoch"] == 2);
  CHECK(parsed[1]["round"] == 5);
  CHECK(!parsed[2].contains("job"));                         // the context is the thread's
  CHECK(!parsed[3].contains("job"));                         // and the scope's
  CHECK(parsed[3]["time"].get<std::string>().size() == 24);  // 2026-01-02T03:04:05.006Z
}

}  // namespace
}  // namespace mrtrain
