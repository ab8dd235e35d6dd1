#include "tools/faultproxy/control_command.h"

#include <chrono>
#include <sstream>
#include <vector>

namespace mrtrain::tools {
namespace {

Result<uint64_t> ParseNumber(const std::string& text) {
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgumentError("\"" + text + "\" is not a non-negative number");
  }
  return static_cast<uint64_t>(std::stoull(text));
}

bool IsNumber(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

Result<std::string> ApplyModeLine(const std::vector<std::string>& words, FaultProxy* proxy) {
  if (words.size() < 2 || words.size() > 4) {
    return InvalidArgumentError("usage: mode NAME [N] [both|c2s|s2c]");
  }
  size_t next = 2;
  std::optional<uint64_t> number;
  if (next < words.size() && IsNumber(words[next])) {
    MRTRAIN_ASSIGN_OR_RETURN(number, ParseNumber(words[next]));
    ++next;
  }
  std::string direction_name = next < words.size() ? words[next++] : "both";
  if (next != words.size()) return InvalidArgumentError("usage: mode NAME [N] [both|c2s|s2c]");
  MRTRAIN_ASSIGN_OR_RETURN(Direction direction, DirectionFromName(direction_name));
  MRTRAIN_ASSIGN_OR_RETURN(Mode mode, ModeFromName(words[1], number));
  proxy->SetMode(mode, direction);
  std::string reply = "ok mode " + words[1];
  if (number) reply += " " + std::to_string(*number);
  return reply + " " + direction_name;
}

}  // namespace

Result<Mode> ModeFromName(const std::string& name, std::optional<uint64_t> number) {
  if (name == "pass" || name == "blackhole") {
    if (number) return InvalidArgumentError("mode " + name + " takes no number");
    return name == "pass" ? Mode::Pass() : Mode::BlackHole();
  }
  if (name == "delay") {
    if (!number) return InvalidArgumentError("mode delay needs a number of milliseconds");
    return Mode::Delay(std::chrono::milliseconds(static_cast<int64_t>(*number)));
  }
  if (name == "drop") return Mode::DropMidFrame(number.value_or(0));
  if (name == "duplicate") return Mode::Duplicate(number);
  if (name == "reorder") return Mode::Reorder(number);
  return InvalidArgumentError("unknown mode \"" + name +
                              "\" (pass, delay, blackhole, drop, duplicate or reorder)");
}

Result<Direction> DirectionFromName(const std::string& name) {
  if (name == "both") return Direction::kBoth;
  if (name == "c2s") return Direction::kClientToServer;
  if (name == "s2c") return Direction::kServerToClient;
  return InvalidArgumentError("unknown direction \"" + name + "\" (both, c2s or s2c)");
}

Result<std::string> ApplyControlLine(const std::string& line, FaultProxy* proxy) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  if (words.empty()) return InvalidArgumentError("empty command (mode, cut or stats)");
  if (words[0] == "mode") return ApplyModeLine(words, proxy);
  if (words.size() == 1 && words[0] == "cut") {
    proxy->CutAll();
    return std::string("ok cut");
  }
  if (words.size() == 1 && words[0] == "stats") return "stats " + FormatCounters(proxy->counters());
  return InvalidArgumentError("unknown command \"" + line + "\" (mode, cut or stats)");
}

std::string FormatCounters(const FaultProxy::Counters& counters) {
  return "accepted=" + std::to_string(counters.connections_accepted) +
         " c2s_bytes=" + std::to_string(counters.bytes_client_to_server) +
         " s2c_bytes=" + std::to_string(counters.bytes_server_to_client) +
         " duplicated=" + std::to_string(counters.frames_duplicated) +
         " reordered=" + std::to_string(counters.frame_pairs_reordered);
}

}  // namespace mrtrain::tools
