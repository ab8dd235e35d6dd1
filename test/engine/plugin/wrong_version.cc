// A plugin built for a future API version: the entry point reports the next version.

#include "engine/api/plugin.h"

extern "C" __attribute__((visibility("default"))) const mrtrain::api::PluginInfo*
mrtrain_plugin_v1() noexcept {
  static const mrtrain::api::PluginInfo kInfo = {mrtrain::api::kApiVersion + 1, 0, nullptr};
  return &kInfo;
}
