#include "tools/faultproxy/control_command.h"

#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "tools/faultproxy/fault_proxy.h"

namespace mrtrain::tools {
namespace {

TEST_CASE("mode names map to modes with their number", "[tools]") {
  Result<Mode> delay = ModeFromName("delay", 250);
  REQUIRE(delay.ok());
  CHECK(delay->fault == Fault::kDelay);
  CHECK(delay->delay == std::chrono::milliseconds(250));

  Result<Mode> drop = ModeFromName("drop", 30);
  REQUIRE(drop.ok());
  CHECK(drop->fault == Fault::kDropMidFrame);
  CHECK(drop->after_bytes == 30);

  Result<Mode> reorder = ModeFromName("reorder", std::nullopt);
  REQUIRE(reorder.ok());
  CHECK(reorder->fault == Fault::kReorder);
  CHECK_FALSE(reorder->frame_index.has_value());

  Result<Mode> duplicate = ModeFromName("duplicate", 4);
  REQUIRE(duplicate.ok());
  CHECK(duplicate->frame_index == std::optional<uint64_t>(4));

  CHECK(ModeFromName("blackhole", std::nullopt)->fault == Fault::kBlackHole);
  CHECK(ModeFromName("delay", std::nullopt).status().code() == StatusCode::kInvalidArgument);
  CHECK(ModeFromName("pass", 3).status().code() == StatusCode::kInvalidArgument);
  CHECK(ModeFromName("flaky", std::nullopt).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("control lines set modes, cut and report counters", "[tools]") {
  FaultProxy proxy("127.0.0.1:1");  // never started: SetMode and CutAll still answer

  Result<std::string> reply = ApplyControlLine("mode delay 200 s2c", &proxy);
  REQUIRE(reply.ok());
  CHECK(*reply == "ok mode delay 200 s2c");
  CHECK(*ApplyControlLine("  mode   blackhole ", &proxy) == "ok mode blackhole both");
  CHECK(*ApplyControlLine("mode duplicate 3 c2s", &proxy) == "ok mode duplicate 3 c2s");
  CHECK(*ApplyControlLine("cut", &proxy) == "ok cut");
  CHECK(*ApplyControlLine("stats", &proxy) ==
        "stats accepted=0 c2s_bytes=0 s2c_bytes=0 duplicated=0 reordered=0");

  for (const char* bad : {"mode", "mode delay", "mode pass 3", "mode drop 1 sideways",
                          "mode drop 1 both extra", "cut now", "reboot", "mode drop -1"}) {
    INFO(bad);
    CHECK(ApplyControlLine(bad, &proxy).status().code() == StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace mrtrain::tools
