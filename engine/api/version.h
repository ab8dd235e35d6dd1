#pragma once

namespace mrtrain::api {

// Bumped whenever a type in engine/api changes layout or a virtual function changes. A plugin
// built against another version is refused at load time.
constexpr int kApiVersion = 2;  // 2: combiners (PluginEntry::create_combiner)

}  // namespace mrtrain::api
