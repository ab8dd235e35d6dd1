#pragma once

// How a shared library offers mappers (models), reducers (update rules) and combiners to mrtrain.
//
// A plugin is a shared library built against the headers of engine/api and nothing else. In
// exactly one of its source files it lists its classes once:
//
//   #include "engine/api/plugin.h"
//
//   MRTRAIN_PLUGIN(MRTRAIN_MAPPER("huber", HuberMapper),
//                  MRTRAIN_REDUCER("clipped_sgd", ClippedSgdReducer),
//                  MRTRAIN_COMBINER("block_clip", BlockClipCombiner))
//
// The contract:
//   - Each registered class derives from api::Mapper, api::Reducer or api::Combiner and has a
//     constructor taking `const api::Hyperparameters&`: the job spec's `model.params`,
//     `update.params` or `combiner.params`.
//     The constructor should throw std::invalid_argument for a key it does not know or a value
//     it cannot use; the engine reports that as a plugin error naming the plugin and the name.
//   - The macro defines one C function, `mrtrain_plugin_v1`, which is `extern "C"`, `noexcept`,
//     exported with default visibility, and returns a pointer to a static PluginInfo whose first
//     member is the kApiVersion the plugin was compiled with. The engine reads that version
//     before anything else and refuses a library built for another one. The symbol's name stays
//     `mrtrain_plugin_v1` for as long as PluginInfo starts with the version.
//   - Only the types below and the engine/api classes cross the library boundary: no Status,
//     Boost or spdlog types. Objects are created by the plugin's factories with `new` and
//     destroyed by the engine through their virtual destructor; the library stays loaded until
//     every object it created is gone.
//   - Methods may throw (std::exception or anything else); the engine turns that into a failed
//     task whose message names the class, its registered name, the library and what() (or
//     "unknown exception"), and never lets it take the process down.
//   - Names are unique within one library; across the libraries of one job, the first library
//     (in the spec's `plugins:` order) exporting a name wins.

#include "engine/api/combiner.h"
#include "engine/api/hyperparameters.h"
#include "engine/api/mapper.h"
#include "engine/api/reducer.h"
#include "engine/api/version.h"

namespace mrtrain::api {

using MapperFactory = Mapper* (*)(const Hyperparameters& params);
using ReducerFactory = Reducer* (*)(const Hyperparameters& params);
using CombinerFactory = Combiner* (*)(const Hyperparameters& params);

// One registered class: exactly one of the factories is set.
struct PluginEntry {
  const char* name;
  MapperFactory create_mapper;
  ReducerFactory create_reducer;
  CombinerFactory create_combiner;
  const char* class_name;  // the C++ class, as written in the macro: named in error messages
};

// What the entry point returns. `api_version` must stay the first member.
struct PluginInfo {
  int api_version;
  int num_entries;
  const PluginEntry* entries;  // num_entries of them, static in the plugin
};

// The entry point's symbol name and type.
constexpr const char kPluginEntryPoint[] = "mrtrain_plugin_v1";
using PluginEntryPointFn = const PluginInfo*() noexcept;

}  // namespace mrtrain::api

// A PluginEntry for Mapper subclass `cls` under job-spec name `name` (a string literal).
#define MRTRAIN_MAPPER(name, cls)                                                      \
  ::mrtrain::api::PluginEntry {                                                        \
    name,                                                                              \
        [](const ::mrtrain::api::Hyperparameters& params) -> ::mrtrain::api::Mapper* { \
          return new cls(params);                                                      \
        },                                                                             \
        nullptr, nullptr, #cls                                                         \
  }

// A PluginEntry for Reducer subclass `cls` under job-spec name `name` (a string literal).
#define MRTRAIN_REDUCER(name, cls)                                                      \
  ::mrtrain::api::PluginEntry {                                                         \
    name, nullptr,                                                                      \
        [](const ::mrtrain::api::Hyperparameters& params) -> ::mrtrain::api::Reducer* { \
          return new cls(params);                                                       \
        },                                                                              \
        nullptr, #cls                                                                   \
  }

// A PluginEntry for Combiner subclass `cls` under job-spec name `name` (a string literal).
#define MRTRAIN_COMBINER(name, cls)                                                      \
  ::mrtrain::api::PluginEntry {                                                          \
    name, nullptr, nullptr,                                                              \
        [](const ::mrtrain::api::Hyperparameters& params) -> ::mrtrain::api::Combiner* { \
          return new cls(params);                                                        \
        },                                                                               \
        #cls                                                                             \
  }

// Defines the plugin's entry point from a list of MRTRAIN_MAPPER / MRTRAIN_REDUCER /
// MRTRAIN_COMBINER entries.
// Use once per library, at namespace scope.
#define MRTRAIN_PLUGIN(...)                                                                       \
  extern "C" __attribute__((visibility("default"))) const ::mrtrain::api::PluginInfo*             \
  mrtrain_plugin_v1() noexcept {                                                                  \
    static const ::mrtrain::api::PluginEntry kMrtrainEntries[] = {__VA_ARGS__};                   \
    static const ::mrtrain::api::PluginInfo kMrtrainInfo = {                                      \
        ::mrtrain::api::kApiVersion,                                                              \
        static_cast<int>(sizeof(kMrtrainEntries) / sizeof(kMrtrainEntries[0])), kMrtrainEntries}; \
    return &kMrtrainInfo;                                                                         \
  }
