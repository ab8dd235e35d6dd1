#include "engine/plugin/plugin_library.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include <boost/dll/shared_library.hpp>

#include "engine/base/log.h"
#include "engine/plugin/plugin_call.h"

namespace mrtrain::plugin {
namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// What made a plugin object, for messages: `mapper "huber" (HuberMapper in libx.so)`.
class PluginOrigin {
 public:
  explicit PluginOrigin(std::string description) : description_(std::move(description)) {}
  const std::string& description() const { return description_; }

 private:
  std::string description_;
};

std::string Describe(const std::string& kind, const api::PluginEntry& entry,
                     const std::string& library) {
  const std::string cls = entry.class_name ? std::string(entry.class_name) + " in " : "";
  return kind + " \"" + entry.name + "\" (" + cls + library + ")";
}

// A Mapper made by a plugin. Forwards every call unchanged (exceptions included: the engine's
// callers guard them with CallPlugin) and keeps the library loaded while the object lives.
// Member order matters: impl_ is destroyed before library_ lets the code go.
class PluginMapper final : public api::Mapper, public PluginOrigin {
 public:
  PluginMapper(std::shared_ptr<PluginLibrary> library, std::unique_ptr<api::Mapper> impl,
               std::string description)
      : PluginOrigin(std::move(description)),
        library_(std::move(library)),
        impl_(std::move(impl)) {}

  std::vector<api::TensorSpec> DescribeModel(const api::DataShape& shape) override {
    return impl_->DescribeModel(shape);
  }
  void Gradient(const api::MapContext& ctx, const api::Rows& rows, const api::ParamsView& params,
                api::GradientSink& sink, api::MapStats& stats) override {
    impl_->Gradient(ctx, rows, params, sink, stats);
  }
  void Evaluate(const api::Rows& rows, const api::ParamsView& params,
                api::MapStats& stats) override {
    impl_->Evaluate(rows, params, stats);
  }
  int NumOutputs() const override { return impl_->NumOutputs(); }
  void Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
               float* scores) override {
    impl_->Predict(rows, params, predicted, scores);
  }

 private:
  std::shared_ptr<PluginLibrary> library_;
  std::unique_ptr<api::Mapper> impl_;
};

// A Reducer made by a plugin; as PluginMapper.
class PluginReducer final : public api::Reducer, public PluginOrigin {
 public:
  PluginReducer(std::shared_ptr<PluginLibrary> library, std::unique_ptr<api::Reducer> impl,
                std::string description)
      : PluginOrigin(std::move(description)),
        library_(std::move(library)),
        impl_(std::move(impl)) {}

  int NumSlots() const override { return impl_->NumSlots(); }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override {
    impl_->Update(ctx, grad, params, slots, n);
  }

 private:
  std::shared_ptr<PluginLibrary> library_;
  std::unique_ptr<api::Reducer> impl_;
};

// A Combiner made by a plugin; as PluginMapper.
class PluginCombiner final : public api::Combiner, public PluginOrigin {
 public:
  PluginCombiner(std::shared_ptr<PluginLibrary> library, std::unique_ptr<api::Combiner> impl,
                 std::string description)
      : PluginOrigin(std::move(description)),
        library_(std::move(library)),
        impl_(std::move(impl)) {}

  void Combine(const api::CombineContext& ctx, float* values, int64_t n) override {
    impl_->Combine(ctx, values, n);
  }

 private:
  std::shared_ptr<PluginLibrary> library_;
  std::unique_ptr<api::Combiner> impl_;
};

// Which factory an entry sets.
enum class Kind { kMapper, kReducer, kCombiner, kMalformed };
Kind KindOf(const api::PluginEntry& e) {
  const int set = (e.create_mapper != nullptr) + (e.create_reducer != nullptr) +
                  (e.create_combiner != nullptr);
  if (set != 1) return Kind::kMalformed;
  return e.create_mapper ? Kind::kMapper : e.create_reducer ? Kind::kReducer : Kind::kCombiner;
}

// Runs a plugin factory under the guard; `who` describes what it makes.
template <typename T, typename Factory>
Result<std::unique_ptr<T>> CallFactory(const std::string& who, Factory factory,
                                       const api::Hyperparameters& params) {
  T* made = nullptr;
  MRTRAIN_RETURN_IF_ERROR(CallPlugin(who, "constructor", [&] { made = factory(params); }));
  if (made == nullptr) return PluginError(who + ": the factory returned null");
  return std::unique_ptr<T>(made);
}

template <typename T>
std::string DescribeObject(const T& object, const std::string& fallback) {
  const auto* origin = dynamic_cast<const PluginOrigin*>(&object);
  return origin ? origin->description() : fallback;
}

}  // namespace

std::string DescribeMapper(const api::Mapper& mapper, const std::string& fallback) {
  return DescribeObject(mapper, fallback);
}
std::string DescribeReducer(const api::Reducer& reducer, const std::string& fallback) {
  return DescribeObject(reducer, fallback);
}
std::string DescribeCombiner(const api::Combiner& combiner, const std::string& fallback) {
  return DescribeObject(combiner, fallback);
}

struct PluginLibrary::Handle {
  boost::dll::shared_library library;
};

Result<std::shared_ptr<PluginLibrary>> PluginLibrary::Load(const std::string& file,
                                                          const std::string& name) {
  // Messages and logs say `path`: the library as the user named it.
  const std::string& path = name.empty() ? file : name;
  std::error_code exists_error;
  if (!std::filesystem::exists(file, exists_error)) {
    return NotFoundError(path + ": plugin library not found");
  }
  auto handle = std::make_unique<Handle>();
  boost::dll::fs::error_code ec;
  // An absolute path, so that "libx.so" means the file here, not a search of the system's
  // library folders; RTLD_LOCAL, so two plugins may define the same symbols.
  handle->library.load(std::filesystem::absolute(file, exists_error), ec,
                       boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
  if (ec) {
    return PluginError(path + ": cannot load: " + ec.message());
  }
  if (!handle->library.has(api::kPluginEntryPoint)) {
    return PluginError(path + ": no entry point " + api::kPluginEntryPoint +
                       ": not an mrtrain plugin (define one with MRTRAIN_PLUGIN from "
                       "engine/api/plugin.h)");
  }
  auto& entry = handle->library.get<api::PluginEntryPointFn>(api::kPluginEntryPoint);
  const api::PluginInfo* info = entry();
  if (info == nullptr) return PluginError(path + ": the entry point returned null");
  if (info->api_version != api::kApiVersion) {
    return PluginError(path + ": built for plugin API " + std::to_string(info->api_version) +
                       ", this mrtrain speaks " + std::to_string(api::kApiVersion) +
                       "; rebuild the plugin against this mrtrain's engine/api headers");
  }
  if (info->num_entries < 0 || (info->num_entries > 0 && info->entries == nullptr)) {
    return PluginError(path + ": malformed plugin table");
  }
  for (int i = 0; i < info->num_entries; ++i) {
    const api::PluginEntry& e = info->entries[i];
    if (e.name == nullptr || KindOf(e) == Kind::kMalformed) {
      return PluginError(path + ": malformed plugin table entry " + std::to_string(i));
    }
    for (int j = 0; j < i; ++j) {
      const api::PluginEntry& earlier = info->entries[j];
      if (KindOf(earlier) == KindOf(e) && std::string(earlier.name) == e.name) {
        return PluginError(path + ": registers '" + e.name + "' twice");
      }
    }
  }
  std::shared_ptr<PluginLibrary> library(new PluginLibrary(path, std::move(handle), info));
  Logger("plugin")->info("loaded plugin {}{} ({})", path, file == path ? "" : " from " + file,
                         library->DescribeExports());
  return library;
}

PluginLibrary::PluginLibrary(std::string path, std::unique_ptr<Handle> handle,
                             const api::PluginInfo* info)
    : path_(std::move(path)), handle_(std::move(handle)), info_(info) {}

PluginLibrary::~PluginLibrary() = default;

const api::PluginEntry* PluginLibrary::FindEntry(const std::string& name, int kind) const {
  for (int i = 0; i < info_->num_entries; ++i) {
    const api::PluginEntry& e = info_->entries[i];
    if (static_cast<int>(KindOf(e)) == kind && name == e.name) return &e;
  }
  return nullptr;
}

std::vector<std::string> PluginLibrary::NamesOf(int kind) const {
  std::vector<std::string> names;
  for (int i = 0; i < info_->num_entries; ++i) {
    if (static_cast<int>(KindOf(info_->entries[i])) == kind) {
      names.emplace_back(info_->entries[i].name);
    }
  }
  return names;
}

std::vector<std::string> PluginLibrary::MapperNames() const {
  return NamesOf(static_cast<int>(Kind::kMapper));
}
std::vector<std::string> PluginLibrary::ReducerNames() const {
  return NamesOf(static_cast<int>(Kind::kReducer));
}
std::vector<std::string> PluginLibrary::CombinerNames() const {
  return NamesOf(static_cast<int>(Kind::kCombiner));
}
bool PluginLibrary::HasMapper(const std::string& name) const {
  return FindEntry(name, static_cast<int>(Kind::kMapper)) != nullptr;
}
bool PluginLibrary::HasReducer(const std::string& name) const {
  return FindEntry(name, static_cast<int>(Kind::kReducer)) != nullptr;
}
bool PluginLibrary::HasCombiner(const std::string& name) const {
  return FindEntry(name, static_cast<int>(Kind::kCombiner)) != nullptr;
}

std::string PluginLibrary::DescribeExports() const {
  std::string out = "mappers: " + Join(MapperNames()) + "; reducers: " + Join(ReducerNames());
  if (!CombinerNames().empty()) out += "; combiners: " + Join(CombinerNames());
  return out;
}

Result<std::unique_ptr<api::Mapper>> PluginLibrary::CreateMapper(
    const std::string& name, const api::Hyperparameters& params) {
  const api::PluginEntry* e = FindEntry(name, static_cast<int>(Kind::kMapper));
  if (e == nullptr) {
    return NotFoundError(path_ + ": exports no mapper '" + name + "' (" + DescribeExports() + ")");
  }
  const std::string who = Describe("mapper", *e, path_);
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<api::Mapper> impl,
                           CallFactory<api::Mapper>(who, e->create_mapper, params));
  return std::unique_ptr<api::Mapper>(
      std::make_unique<PluginMapper>(shared_from_this(), std::move(impl), who));
}

Result<std::unique_ptr<api::Reducer>> PluginLibrary::CreateReducer(
    const std::string& name, const api::Hyperparameters& params) {
  const api::PluginEntry* e = FindEntry(name, static_cast<int>(Kind::kReducer));
  if (e == nullptr) {
    return NotFoundError(path_ + ": exports no reducer '" + name + "' (" + DescribeExports() + ")");
  }
  const std::string who = Describe("reducer", *e, path_);
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<api::Reducer> impl,
                           CallFactory<api::Reducer>(who, e->create_reducer, params));
  return std::unique_ptr<api::Reducer>(
      std::make_unique<PluginReducer>(shared_from_this(), std::move(impl), who));
}

Result<std::unique_ptr<api::Combiner>> PluginLibrary::CreateCombiner(
    const std::string& name, const api::Hyperparameters& params) {
  const api::PluginEntry* e = FindEntry(name, static_cast<int>(Kind::kCombiner));
  if (e == nullptr) {
    return NotFoundError(path_ + ": exports no combiner '" + name + "' (" + DescribeExports() +
                         ")");
  }
  const std::string who = Describe("combiner", *e, path_);
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<api::Combiner> impl,
                           CallFactory<api::Combiner>(who, e->create_combiner, params));
  return std::unique_ptr<api::Combiner>(
      std::make_unique<PluginCombiner>(shared_from_this(), std::move(impl), who));
}

Result<PluginSet> PluginSet::Load(const std::vector<std::string>& paths,
                                  const std::vector<std::string>& names) {
  PluginSet set;
  for (size_t i = 0; i < paths.size(); ++i) {
    MRTRAIN_ASSIGN_OR_RETURN(auto library,
                             PluginLibrary::Load(paths[i], i < names.size() ? names[i] : ""));
    set.libraries_.push_back(std::move(library));
  }
  return set;
}

Status PluginSet::NotExported(const std::string& kind, const std::string& name) const {
  std::string listing;
  for (const auto& library : libraries_) {
    listing +=
        (listing.empty() ? "" : "; ") + library->path() + " exports " + library->DescribeExports();
  }
  if (listing.empty()) listing = "no plugins are loaded; list libraries under plugins:";
  return NotFoundError("no plugin exports " + kind + " '" + name + "' (" + listing + ")");
}

Result<std::unique_ptr<api::Mapper>> PluginSet::CreateMapper(
    const std::string& name, const api::Hyperparameters& params) const {
  for (const auto& library : libraries_) {
    if (library->HasMapper(name)) return library->CreateMapper(name, params);
  }
  return NotExported("mapper", name);
}

Result<std::unique_ptr<api::Reducer>> PluginSet::CreateReducer(
    const std::string& name, const api::Hyperparameters& params) const {
  for (const auto& library : libraries_) {
    if (library->HasReducer(name)) return library->CreateReducer(name, params);
  }
  return NotExported("reducer", name);
}

Result<std::unique_ptr<api::Combiner>> PluginSet::CreateCombiner(
    const std::string& name, const api::Hyperparameters& params) const {
  for (const auto& library : libraries_) {
    if (library->HasCombiner(name)) return library->CreateCombiner(name, params);
  }
  return NotExported("combiner", name);
}

}  // namespace mrtrain::plugin
