#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace mrtrain::api {

// What a mapper sees of the data: a batch of rows in one of two compact forms. The memory
// belongs to the engine and is valid only during the call that receives the view.
struct Rows {
  int64_t num_rows = 0;
  int64_t num_cols = 0;  // the number of features
  bool is_sparse = false;

  // Dense: row-major num_rows x num_cols.
  const float* dense = nullptr;

  // Sparse (CSR): the features of row i are cols/values[row_offsets[i] .. row_offsets[i+1]).
  // Column indices are 0-based and strictly increasing within a row.
  const int64_t* row_offsets = nullptr;
  const uint32_t* cols = nullptr;
  const float* values = nullptr;

  // num_rows labels: a class index (0, 1, ...) for classifiers, a value for regression.
  const float* labels = nullptr;
};

// The shape of the training data, known before the first task runs.
struct DataShape {
  int64_t num_features = 0;
  int64_t num_classes = 0;  // 0 when labels are real values
  bool is_sparse = false;
};

// One tensor of a model. Weights are initialised by the job's scheme and regularised; biases
// start at zero and are not regularised.
//
// A row-sparse tensor (row_sparse = true) has shape [rows, dim]: a table of `rows` rows of `dim`
// floats addressed by a 64-bit row id (a hashed feature, an embedding), up to 2^48 rows. It
// never exists whole anywhere: a task reads the rows it asked for (Mapper::NeededRows,
// ParamsView::Row) and emits gradients row by row (GradientSink::AddRow); reducers create a row
// when it is first updated and update only the rows a round touches.
struct TensorSpec {
  enum class Role { kWeight, kBias };
  std::string name;            // unique within the model, e.g. "W1"
  std::vector<int64_t> shape;  // row-major; [fan_in, fan_out] for a weight matrix
  Role role = Role::kWeight;
  bool row_sparse = false;

  // The floats of one row of a row-sparse tensor.
  int64_t row_dim() const { return shape.size() == 2 ? shape[1] : 0; }

  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Where a task's pulled rows of row-sparse tensors are looked up. Implemented by the engine.
class RowSource {
 public:
  virtual ~RowSource() = default;
  // The row_dim() floats of row `id` of tensor `tensor_id`, or nullptr when the task did not
  // ask for that row.
  virtual const float* Find(int tensor_id, int64_t id) const = 0;
};

// The parameters a task reads: every dense tensor of the model, in the order the mapper
// described them, each contiguous and row-major (nullptr for a row-sparse tensor), and the rows
// of row-sparse tensors the task asked for. Valid only during the call.
struct ParamsView {
  const std::vector<TensorSpec>* specs = nullptr;
  std::vector<const float*> tensors;
  const RowSource* rows = nullptr;

  // The pulled row `id` of row-sparse tensor `tensor_id` (row_dim() floats). Throws
  // std::out_of_range for a dense or unknown tensor, or a row the mapper's NeededRows did not
  // name for this task.
  const float* Row(int tensor_id, int64_t id) const {
    if (specs == nullptr || tensor_id < 0 || tensor_id >= static_cast<int>(specs->size()) ||
        !(*specs)[tensor_id].row_sparse) {
      throw std::out_of_range("ParamsView::Row: tensor id " + std::to_string(tensor_id) +
                              " is not a row-sparse tensor of the model");
    }
    const float* row = rows == nullptr ? nullptr : rows->Find(tensor_id, id);
    if (row == nullptr) {
      throw std::out_of_range("ParamsView::Row: row " + std::to_string(id) + " of tensor \"" +
                              (*specs)[tensor_id].name +
                              "\" was not pulled for this task: NeededRows did not name it");
    }
    return row;
  }
};

// Where a mapper puts gradients. Values added for the same place within one task are summed
// (the combiner); the engine routes the sums through the shuffle to the reducers.
//
// Every call says how many floats `gradient` holds, and the engine reads none unless that is
// exactly the size of the place: a buffer sized for another shape (a classic slip) fails the
// task with a message naming the mapper, its library, the tensor and both sizes, instead of
// reading past the buffer or dropping a tail.
class GradientSink {
 public:
  virtual ~GradientSink() = default;

  // Adds the gradient of one whole tensor, summed over the rows of the call (not averaged: the
  // reducer divides by the number of examples). REQUIRES: count == spec(tensor_id).size().
  virtual void AddTensor(int tensor_id, const float* gradient, size_t count) = 0;

  // Adds the gradient of block `block` of a tensor. For sparse models that touch few blocks.
  // REQUIRES: count == block_size(), or what is left of the tensor for its last block.
  virtual void AddBlock(int tensor_id, int64_t block, const float* gradient, size_t count) = 0;

  // The number of floats in a block (the job's model.block_size).
  virtual int64_t block_size() const = 0;

  // Adds the gradient of row `row` of a row-sparse tensor. REQUIRES: 0 <= row < the tensor's
  // rows and count == its row_dim(). The only way to emit into a row-sparse tensor.
  virtual void AddRow(int tensor_id, int64_t row, const float* gradient, size_t count) = 0;

  // For std::vector<float> and the like: data() and size().
  template <typename Buffer>
  void AddTensor(int tensor_id, const Buffer& gradient) {
    static_assert(!std::is_pointer_v<Buffer>,
                  "plugin API 3 removed AddTensor(id, pointer), which could not check the "
                  "buffer's size: use AddTensor(id, pointer, count) or AddTensor(id, vector)");
    AddTensor(tensor_id, gradient.data(), gradient.size());
  }
};

// Where a mapper names the rows of row-sparse tensors a batch needs (Mapper::NeededRows).
// Naming a row twice is harmless.
class RowRequest {
 public:
  virtual ~RowRequest() = default;
  virtual void Need(int tensor_id, int64_t row) = 0;
};

// Statistics a task reports besides gradients. Summed over partitions in the order of the
// reduction tree (as gradients are).
struct MapStats {
  double loss_sum = 0;   // the loss summed over examples
  int64_t examples = 0;  // how many examples contributed
  int64_t correct = 0;   // correctly classified examples (classifiers only)
};

// A sink for plugin log lines; the engine tags them with the task's id.
class TaskLog {
 public:
  virtual ~TaskLog() = default;
  virtual void Info(const std::string& message) = 0;
  virtual void Warn(const std::string& message) = 0;
};

}  // namespace mrtrain::api
