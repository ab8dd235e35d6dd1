// A plugin built for a future API version: the entry point reports version 2.

#include "engine/api/plugin.h"

extern "C" __attribute__((visibility("default"))) const mrtrain::api::PluginInfo*
mrtrain_plugin_v1() noexcept {
  static const mrtrain::api::PluginInfo kInfo = {2, 0, nullptr};
  return &kInfo;
}
