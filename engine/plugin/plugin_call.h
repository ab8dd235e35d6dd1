#pragma once

#include <functional>
#include <optional>
#include <string>

#include "engine/base/status.h"

namespace mrtrain::plugin {

// The one guard around calls into mapper, reducer and combiner code: the plugins' and the
// built-ins' alike, since both are written against engine/api, whose methods may throw. Nothing
// a call throws leaves it, whatever its type, so a failing plugin fails its task and never the
// process. Thread-safe (it keeps no state).

// Runs `call`; returns nullopt when it returns, or the message of what it threw: what() of a
// std::exception, "unknown exception" for anything else.
std::optional<std::string> ThrownBy(const std::function<void()>& call);

// Runs `call`; when it throws, kPluginError "<who>: <what> failed: <message>", where `who`
// names the object (DescribeMapper and friends in plugin_library.h: its name, class and library)
// and `what` the call ("Gradient", "update of tensor W1").
Status CallPlugin(const std::string& who, const std::string& what,
                  const std::function<void()>& call);

}  // namespace mrtrain::plugin
