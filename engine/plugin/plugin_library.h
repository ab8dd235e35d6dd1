#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/api/combiner.h"
#include "engine/api/hyperparameters.h"
#include "engine/api/mapper.h"
#include "engine/api/plugin.h"
#include "engine/api/reducer.h"
#include "engine/base/status.h"

namespace mrtrain::plugin {

// What an object made by a PluginLibrary is, for messages: `mapper "huber" (HuberMapper in
// libx.so)`, with the library as the user named it; `fallback` for any other object (a
// built-in).
std::string DescribeMapper(const api::Mapper& mapper, const std::string& fallback);
std::string DescribeReducer(const api::Reducer& reducer, const std::string& fallback);
std::string DescribeCombiner(const api::Combiner& combiner, const std::string& fallback);

// One loaded plugin library (engine/api/plugin.h). Objects it creates hold a shared reference
// to it, so the library is unloaded only after the last of them and the last PluginLibrary
// handle are gone. Loading checks that the entry point exists and that the API version matches;
// every call into the plugin's factories is guarded (plugin_call.h): anything thrown becomes
// kPluginError naming the name, class, library and message. Thread-safe after Load (it is
// immutable).
class PluginLibrary : public std::enable_shared_from_this<PluginLibrary> {
 public:
  // Loads the library at `path`. Errors name the path:
  //   kNotFound             the file does not exist
  //   kPluginError          it cannot be loaded (dlopen's message), has no entry point ("not an
  //                         mrtrain plugin"), was built for another plugin API version, or
  //                         exports a malformed table
  // `name`, when given, is what errors and logs call the library (the path the user wrote, for
  // a copy loaded from elsewhere); by default `file`.
  static Result<std::shared_ptr<PluginLibrary>> Load(const std::string& file,
                                                     const std::string& name = "");

  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> MapperNames() const;
  std::vector<std::string> ReducerNames() const;
  std::vector<std::string> CombinerNames() const;
  bool HasMapper(const std::string& name) const;
  bool HasReducer(const std::string& name) const;
  bool HasCombiner(const std::string& name) const;
  // "mappers: huber; reducers: clipped_sgd", then "; combiners: ..." when there are any.
  std::string DescribeExports() const;

  // Creates mapper `name` with `params`. kNotFound when the library exports no mapper of that
  // name (the message lists what it exports); kPluginError when the factory throws or returns
  // null. The result keeps this library loaded; DescribeMapper names it.
  Result<std::unique_ptr<api::Mapper>> CreateMapper(const std::string& name,
                                                    const api::Hyperparameters& params);
  // The same for reducers and combiners.
  Result<std::unique_ptr<api::Reducer>> CreateReducer(const std::string& name,
                                                      const api::Hyperparameters& params);
  Result<std::unique_ptr<api::Combiner>> CreateCombiner(const std::string& name,
                                                        const api::Hyperparameters& params);

 private:
  struct Handle;  // the Boost.DLL library, kept out of this header
  PluginLibrary(std::string path, std::unique_ptr<Handle> handle, const api::PluginInfo* info);
  // `kind` is the .cc's Kind of entry (mapper, reducer, combiner).
  const api::PluginEntry* FindEntry(const std::string& name, int kind) const;
  std::vector<std::string> NamesOf(int kind) const;

  // Constant after construction.
  std::string path_;
  std::unique_ptr<Handle> handle_;
  const api::PluginInfo* info_;  // static data inside the library; valid while handle_ lives
};

// The plugin libraries of one job, in the spec's `plugins:` order; a name is looked up in each
// in turn. Cheap to copy (shares the libraries).
class PluginSet {
 public:
  // Loads every library; the first failure is returned. names[i], when given, is what messages
  // call paths[i] (see PluginLibrary::Load).
  static Result<PluginSet> Load(const std::vector<std::string>& paths,
                                const std::vector<std::string>& names = {});

  const std::vector<std::shared_ptr<PluginLibrary>>& libraries() const { return libraries_; }

  // Creates mapper/reducer `name` from the first library that exports it. kNotFound, listing
  // every library and what it exports, when none does; otherwise as PluginLibrary.
  Result<std::unique_ptr<api::Mapper>> CreateMapper(const std::string& name,
                                                    const api::Hyperparameters& params) const;
  Result<std::unique_ptr<api::Reducer>> CreateReducer(const std::string& name,
                                                      const api::Hyperparameters& params) const;
  Result<std::unique_ptr<api::Combiner>> CreateCombiner(const std::string& name,
                                                        const api::Hyperparameters& params) const;

 private:
  Status NotExported(const std::string& kind, const std::string& name) const;

  std::vector<std::shared_ptr<PluginLibrary>> libraries_;
};

}  // namespace mrtrain::plugin
