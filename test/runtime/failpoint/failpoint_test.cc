#include "runtime/failpoint/failpoint.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::runtime::failpoint {
namespace {

using Catch::Matchers::Contains;

// Each test starts with its own Configure(), which replaces whatever an earlier test left.
void MustConfigure(const std::string& spec) {
  Status status = Configure(spec);
  INFO(status.ToString());
  REQUIRE(status.ok());
}

std::string ConfigureError(const std::string& spec) {
  Status status = Configure(spec);
  REQUIRE(status.code() == StatusCode::kInvalidArgument);
  return status.message();
}

Coordinates FullCoordinates() {
  Coordinates at;
  at.worker = "w2";
  at.epoch = 1;
  at.round = 4;
  at.partition = 3;
  at.shard = 5;
  at.attempt = 0;
  return at;
}

int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

// Runs Configure(spec) and Hit(name, at) in a forked child; returns the child's exit code, or
// -1 if it did not exit normally. The child exits 0 if Hit() returned.
int ExitCodeOfChildHitting(const std::string& spec, const std::string& name,
                           const Coordinates& at) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!Configure(spec).ok()) _exit(1);
    Hit(name, at);
    _exit(0);
  }
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

TEST_CASE("known failpoints are exactly the six places the runtime hits", "[runtime]") {
  CHECK(KnownFailpoints() == std::vector<std::string>{"map-after-compute", "shuffle-mid-send",
                                                      "reduce-before-commit",
                                                      "checkpoint-mid-write", "pull-before-reply",
                                                      "predict-after-write"});
}

TEST_CASE("configuration errors name the entry and what was expected", "[runtime]") {
  SECTION("unknown action") {
    CHECK(ConfigureError("shuffle-mid-send=drop;map-after-compute=explode") ==
          "failpoint entry 2 \"map-after-compute=explode\": unknown action \"explode\"; expected "
          "crash, hang, delay, drop or corrupt");
  }
  SECTION("unknown failpoint lists the known ones") {
    CHECK_THAT(ConfigureError("map-after-compte=crash"),
               Contains("failpoint entry 1 \"map-after-compte=crash\": unknown failpoint "
                        "\"map-after-compte\"; known failpoints are map-after-compute, "
                        "shuffle-mid-send, reduce-before-commit, checkpoint-mid-write, "
                        "pull-before-reply, predict-after-write"));
  }
  SECTION("malformed name") {
    CHECK_THAT(ConfigureError("Map_After=crash"), Contains("must be non-empty and use only"));
    CHECK_THAT(ConfigureError("=crash"), Contains("failpoint name \"\""));
  }
  SECTION("missing action") {
    CHECK_THAT(ConfigureError("map-after-compute"), Contains("expected NAME=ACTION"));
  }
  SECTION("unknown key") {
    CHECK(ConfigureError("map-after-compute=drop@worker=w1,task=3") ==
          "failpoint entry 1 \"map-after-compute=drop@worker=w1,task=3\": unknown key \"task\"; "
          "expected worker, epoch, round, partition, shard, attempt or times");
  }
  SECTION("bad values") {
    CHECK_THAT(ConfigureError("map-after-compute=drop@epoch=one"),
               Contains("key \"epoch\" needs a non-negative integer, got \"one\""));
    CHECK_THAT(ConfigureError("map-after-compute=drop@epoch=-1"),
               Contains("key \"epoch\" needs a non-negative integer"));
    CHECK_THAT(ConfigureError("map-after-compute=drop@times=0"),
               Contains("key \"times\" needs a positive integer"));
    CHECK_THAT(ConfigureError("map-after-compute=drop@worker="),
               Contains("key \"worker\" needs a worker name"));
    CHECK_THAT(ConfigureError("map-after-compute=drop@epoch"),
               Contains("expected KEY=VALUE after \"@\", got \"epoch\""));
    CHECK_THAT(ConfigureError("map-after-compute=drop@epoch=1,epoch=2"),
               Contains("key \"epoch\" given twice"));
  }
  SECTION("arguments") {
    CHECK_THAT(ConfigureError("shuffle-mid-send=delay"),
               Contains("delay needs milliseconds, e.g. delay(250)"));
    CHECK_THAT(ConfigureError("shuffle-mid-send=delay(soon)"),
               Contains("delay takes milliseconds (a non-negative integer), got \"soon\""));
    CHECK_THAT(ConfigureError("shuffle-mid-send=delay(25"), Contains("without a closing"));
    CHECK_THAT(ConfigureError("shuffle-mid-send=drop(1)"), Contains("drop takes no argument"));
    CHECK_THAT(ConfigureError("shuffle-mid-send=crash(256)"),
               Contains("crash takes an exit code 1..255, got \"256\""));
  }
}

TEST_CASE("a failed configuration keeps the previous one", "[runtime]") {
  MustConfigure("pull-before-reply=drop");
  CHECK_FALSE(Configure("pull-before-reply=corrupt;oops").ok());
  CHECK(Hit("pull-before-reply", {}) == Action::kDrop);
}

TEST_CASE("an entry fires only where every coordinate it names matches", "[runtime]") {
  const Coordinates at = FullCoordinates();
  struct Case {
    const char* key_value;
    Coordinates other;   // differs from `at` in that coordinate only
    Coordinates absent;  // the place does not supply that coordinate
  };
  Coordinates other_worker = at, other_epoch = at, other_round = at, other_partition = at,
              other_shard = at, other_attempt = at;
  other_worker.worker = "w20";
  other_epoch.epoch = 2;
  other_round.round = 5;
  other_partition.partition = 4;
  other_shard.shard = 6;
  other_attempt.attempt = 1;
  Coordinates no_worker = at, no_epoch = at, no_round = at, no_partition = at, no_shard = at,
              no_attempt = at;
  no_worker.worker.clear();
  no_epoch.epoch = -1;
  no_round.round = -1;
  no_partition.partition = -1;
  no_shard.shard = -1;
  no_attempt.attempt = -1;
  const Case cases[] = {
      {"worker=w2", other_worker, no_worker}, {"epoch=1", other_epoch, no_epoch},
      {"round=4", other_round, no_round},     {"partition=3", other_partition, no_partition},
      {"shard=5", other_shard, no_shard},     {"attempt=0", other_attempt, no_attempt},
  };
  for (const Case& c : cases) {
    INFO(c.key_value);
    MustConfigure(std::string("map-after-compute=drop@") + c.key_value);
    CHECK(Hit("map-after-compute", at) == Action::kDrop);
    CHECK(Hit("map-after-compute", c.other) == Action::kNone);
    CHECK(Hit("map-after-compute", c.absent) == Action::kNone);
    CHECK(Hit("shuffle-mid-send", at) == Action::kNone);  // another failpoint's name
  }
}

TEST_CASE("an entry with several coordinates needs all of them", "[runtime]") {
  MustConfigure("map-after-compute=corrupt@worker=w2,epoch=1,partition=3,attempt=0");
  Coordinates at = FullCoordinates();
  CHECK(Hit("map-after-compute", at) == Action::kCorrupt);
  at.attempt = 1;
  CHECK(Hit("map-after-compute", at) == Action::kNone);
}

TEST_CASE("an entry without coordinates matches everywhere", "[runtime]") {
  MustConfigure("reduce-before-commit=drop");
  CHECK(Hit("reduce-before-commit", FullCoordinates()) == Action::kDrop);
  CHECK(Hit("reduce-before-commit", {}) == Action::kDrop);
  CHECK(FiredCount("reduce-before-commit") == 2);
}

TEST_CASE("the first matching entry with budget left fires", "[runtime]") {
  MustConfigure(
      "shuffle-mid-send=drop@worker=w1,times=1;shuffle-mid-send=corrupt@worker=w1;"
      "checkpoint-mid-write=drop");
  Coordinates w1;
  w1.worker = "w1";
  CHECK(Hit("shuffle-mid-send", w1) == Action::kDrop);
  CHECK(Hit("shuffle-mid-send", w1) == Action::kCorrupt);
  CHECK(Hit("shuffle-mid-send", w1) == Action::kCorrupt);
  CHECK(FiredCount("shuffle-mid-send") == 3);
  CHECK(FiredCount("checkpoint-mid-write") == 0);
}

TEST_CASE("times limits firings even under concurrent hits", "[runtime]") {
  MustConfigure("pull-before-reply=drop@times=100");
  std::atomic<int> drops{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&drops] {
      for (int i = 0; i < 1000; ++i) {
        if (Hit("pull-before-reply", {}) == Action::kDrop) drops++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(drops == 100);
  CHECK(FiredCount("pull-before-reply") == 100);
}

TEST_CASE("delay and bounded hang sleep at least their milliseconds, then return", "[runtime]") {
  SECTION("delay") {
    MustConfigure("shuffle-mid-send=delay(30)");
    auto start = std::chrono::steady_clock::now();
    CHECK(Hit("shuffle-mid-send", {}) == Action::kDelay);
    CHECK(MillisSince(start) >= 30);
  }
  SECTION("hang") {
    MustConfigure("shuffle-mid-send=hang(20)");
    auto start = std::chrono::steady_clock::now();
    CHECK(Hit("shuffle-mid-send", {}) == Action::kHang);
    CHECK(MillisSince(start) >= 20);
  }
}

TEST_CASE("crash ends the process at once with the configured exit code", "[runtime]") {
  Coordinates at = FullCoordinates();
  CHECK(ExitCodeOfChildHitting("map-after-compute=crash@worker=w2,epoch=1", "map-after-compute",
                               at) == 86);
  CHECK(ExitCodeOfChildHitting("map-after-compute=crash(42)", "map-after-compute", at) == 42);
  // A crash configured for another worker lets the child return from Hit().
  CHECK(ExitCodeOfChildHitting("map-after-compute=crash@worker=w3", "map-after-compute", at) == 0);
}

TEST_CASE("an empty configuration clears every failpoint", "[runtime]") {
  MustConfigure("pull-before-reply=drop");
  CHECK(Hit("pull-before-reply", {}) == Action::kDrop);
  MustConfigure("");
  CHECK(Hit("pull-before-reply", {}) == Action::kNone);
  CHECK(FiredCount("pull-before-reply") == 0);
}

TEST_CASE("ConfigureFromEnv reads MRTRAIN_FAILPOINTS when it is set", "[runtime]") {
  MustConfigure("pull-before-reply=drop");
  SECTION("unset leaves the configuration alone") {
    unsetenv("MRTRAIN_FAILPOINTS");
    CHECK(ConfigureFromEnv().ok());
    CHECK(Hit("pull-before-reply", {}) == Action::kDrop);
  }
  SECTION("set replaces it") {
    setenv("MRTRAIN_FAILPOINTS", "pull-before-reply=corrupt@shard=2", 1);
    CHECK(ConfigureFromEnv().ok());
    Coordinates at;
    at.shard = 2;
    CHECK(Hit("pull-before-reply", at) == Action::kCorrupt);
    CHECK(Hit("pull-before-reply", {}) == Action::kNone);
  }
  SECTION("errors name the variable") {
    setenv("MRTRAIN_FAILPOINTS", "pull-before-reply=explode", 1);
    Status status = ConfigureFromEnv();
    CHECK(status.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(status.message(), Contains("MRTRAIN_FAILPOINTS: failpoint entry 1"));
  }
  unsetenv("MRTRAIN_FAILPOINTS");
}

TEST_CASE("CorruptByte flips the middle byte with 0x5A", "[runtime]") {
  std::string bytes = "abcd";
  CorruptByte(&bytes);
  CHECK(bytes == std::string("ab") + static_cast<char>('c' ^ 0x5A) + "d");
  CorruptByte(&bytes);
  CHECK(bytes == "abcd");
  std::string empty;
  CorruptByte(&empty);
  CHECK(empty.empty());
}

}  // namespace
}  // namespace mrtrain::runtime::failpoint
