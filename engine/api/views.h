#pragma once

#include <cstddef>
#include <cstdint>
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
struct TensorSpec {
  enum class Role { kWeight, kBias };
  std::string name;            // unique within the model, e.g. "W1"
  std::vector<int64_t> shape;  // row-major; [fan_in, fan_out] for a weight matrix
  Role role = Role::kWeight;

  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// The parameters a task reads: every tensor of the model, in the order the mapper described
// them, each contiguous and row-major. Valid only during the call.
struct ParamsView {
  const std::vector<TensorSpec>* specs = nullptr;
  std::vector<const float*> tensors;
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

  // For std::vector<float> and the like: data() and size().
  template <typename Buffer>
  void AddTensor(int tensor_id, const Buffer& gradient) {
    static_assert(!std::is_pointer_v<Buffer>,
                  "plugin API 3 removed AddTensor(id, pointer), which could not check the "
                  "buffer's size: use AddTensor(id, pointer, count) or AddTensor(id, vector)");
    AddTensor(tensor_id, gradient.data(), gradient.size());
  }
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
