#include "engine/plugin/plugin_call.h"

#include <exception>

namespace mrtrain::plugin {

std::optional<std::string> ThrownBy(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("unknown exception");
  }
  return std::nullopt;
}

Status CallPlugin(const std::string& who, const std::string& what,
                  const std::function<void()>& call) {
  std::optional<std::string> thrown = ThrownBy(call);
  if (!thrown) return Status::Ok();
  return PluginError(who + ": " + what + " failed: " + *thrown);
}

}  // namespace mrtrain::plugin
