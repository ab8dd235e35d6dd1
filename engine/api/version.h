#pragma once

namespace mrtrain::api {

// Bumped whenever a type in engine/api changes layout or a virtual function changes. A plugin
// built against another version is refused at load time.
// 2: combiners (PluginEntry::create_combiner)
// 3: GradientSink::AddTensor/AddBlock take the buffer's size and check it;
//    PluginEntry::class_name
// 4: row-sparse tensors: TensorSpec::row_sparse, ParamsView::rows and Row,
//    GradientSink::AddRow, Mapper::NeededRows
constexpr int kApiVersion = 4;

}  // namespace mrtrain::api
