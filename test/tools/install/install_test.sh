#!/bin/sh
# //tools:install puts a working mrtrain and the plugin API headers under a prefix: a plugin
# compiled with g++ against DIR/include/mrtrain alone loads, validates and trains, and the
# commands in the installed example spec's comment work as written.
set -eu

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

install="$TEST_SRCDIR/mrtrain/tools/install"
prefix="$TEST_TMPDIR/prefix"
work="$TEST_TMPDIR/work"
mkdir -p "$work"

# --- Arguments: a prefix is required; an uncreatable one is refused. ---
if "$install" >"$TEST_TMPDIR/args.log" 2>&1; then fail "install without --prefix succeeded"; fi
grep -q -- "--prefix DIR is required" "$TEST_TMPDIR/args.log" || fail "no usage error: $(cat "$TEST_TMPDIR/args.log")"
if "$install" --prefix /proc/mrtrain-install-test >"$TEST_TMPDIR/args.log" 2>&1; then
  fail "install into /proc succeeded"
fi
grep -q "cannot create prefix /proc/mrtrain-install-test" "$TEST_TMPDIR/args.log" ||
  fail "no prefix error: $(cat "$TEST_TMPDIR/args.log")"

# --- Installing twice leaves the same files. ---
"$install" --prefix "$prefix" >"$TEST_TMPDIR/first.log"
"$install" --prefix="$prefix" >"$TEST_TMPDIR/second.log"
cmp -s "$TEST_TMPDIR/first.log" "$TEST_TMPDIR/second.log" || fail "a second install printed something else"
for f in bin/mrtrain include/mrtrain/engine/api/plugin.h include/mrtrain/engine/api/mapper.h \
  include/mrtrain/engine/api/reducer.h include/mrtrain/engine/api/views.h \
  share/mrtrain/examples/example_plugins.cc share/mrtrain/examples/huber_plugin.yaml; do
  grep -qx "installed $prefix/$f" "$TEST_TMPDIR/first.log" || fail "install did not report $f"
  [ -f "$prefix/$f" ] || fail "missing $prefix/$f"
done
[ -x "$prefix/bin/mrtrain" ] || fail "$prefix/bin/mrtrain is not executable"
if find "$prefix" -name '*install-tmp*' | grep -q .; then fail "temporary files left behind"; fi
mrtrain="$prefix/bin/mrtrain"

# --- The headers include each other and the C++ standard library, nothing else. ---
for h in "$prefix"/include/mrtrain/engine/api/*.h; do
  sed -n 's/^#include *//p' "$h" >"$TEST_TMPDIR/includes"
  while read -r inc; do
    case "$inc" in
      \"engine/api/*.h\")
        inc=${inc#\"}
        [ -f "$prefix/include/mrtrain/${inc%\"}" ] || fail "$h includes missing $inc" ;;
      \<*[./]*\>) fail "$h includes $inc, not a C++ standard header" ;;
      \<*\>) ;;
      *) fail "$h includes $inc" ;;
    esac
  done <"$TEST_TMPDIR/includes"
done

# --- A tiny plugin built against the installed headers only. ---
cd "$work"
cat >tiny.cc <<'CC'
#include <vector>

#include "engine/api/plugin.h"

namespace {
namespace api = mrtrain::api;

// y ~ w.x + b under the squared loss, dense rows only.
class TinyLinear : public api::Mapper {
 public:
  explicit TinyLinear(const api::Hyperparameters&) {}
  std::vector<api::TensorSpec> DescribeModel(const api::DataShape& shape) override {
    n_ = shape.num_features;
    return {{"w", {n_}, api::TensorSpec::Role::kWeight}, {"b", {1}, api::TensorSpec::Role::kBias}};
  }
  void Gradient(const api::MapContext&, const api::Rows& rows, const api::ParamsView& params,
                api::GradientSink& sink, api::MapStats& stats) override {
    std::vector<float> grad(n_ + 1, 0.0f);
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      const float r = Score(rows, params, i) - rows.labels[i];
      stats.loss_sum += 0.5 * r * r;
      for (int64_t j = 0; j < n_; ++j) grad[j] += r * rows.dense[i * n_ + j];
      grad[n_] += r;
    }
    stats.examples += rows.num_rows;
    sink.AddTensor(0, grad.data(), n_);
    sink.AddTensor(1, grad.data() + n_, 1);
  }
  void Evaluate(const api::Rows& rows, const api::ParamsView& params,
                api::MapStats& stats) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      const float r = Score(rows, params, i) - rows.labels[i];
      stats.loss_sum += 0.5 * r * r;
    }
    stats.examples += rows.num_rows;
  }
  int NumOutputs() const override { return 1; }
  void Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
               float* scores) override {
    for (int64_t i = 0; i < rows.num_rows; ++i) predicted[i] = scores[i] = Score(rows, params, i);
  }

 private:
  float Score(const api::Rows& rows, const api::ParamsView& params, int64_t i) const {
    float z = params.tensors[1][0];
    for (int64_t j = 0; j < n_; ++j) z += params.tensors[0][j] * rows.dense[i * n_ + j];
    return z;
  }
  int64_t n_ = 0;
};

class TinySgd : public api::Reducer {
 public:
  explicit TinySgd(const api::Hyperparameters&) {}
  int NumSlots() const override { return 0; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const*,
              int64_t n) override {
    for (int64_t i = 0; i < n; ++i) params[i] -= static_cast<float>(ctx.learning_rate) * grad[i];
  }
};
}  // namespace

MRTRAIN_PLUGIN(MRTRAIN_MAPPER("tiny_linear", TinyLinear), MRTRAIN_REDUCER("tiny_sgd", TinySgd))
CC
g++ -std=c++17 -Wall -Wextra -Werror -shared -fPIC -I"$prefix/include/mrtrain" tiny.cc \
  -o libtiny.so || fail "the tiny plugin does not compile against $prefix/include/mrtrain"

# y = 2 x1 - x2 + 1 exactly, 400 rows.
awk 'BEGIN { srand(7); for (i = 0; i < 400; i++) { a = 2 * rand() - 1; b = 2 * rand() - 1
  printf "%.6f,%.6f,%.6f\n", 2 * a - b + 1, a, b } }' >line.csv
cat >tiny.yaml <<'YAML'
plugins: [libtiny.so]
data:
  train: {path: line.csv, format: csv, partitions: 2}
  test: {path: line.csv, format: csv}
model: {plugin: tiny_linear, init: zeros}
update: {plugin: tiny_sgd, learning_rate: 0.5}
training: {epochs: 1, rounds_per_epoch: 40}
output: {dir: out/tiny}
YAML
"$mrtrain" validate tiny.yaml >validate.out 2>&1 || fail "validate: $(cat validate.out)"
grep -q "tiny.yaml: ok (job tiny: model plugin:tiny_linear, rule plugin:tiny_sgd" validate.out ||
  fail "validate: $(cat validate.out)"
if "$mrtrain" validate tiny.yaml --set model.plugin=nope >nope.out 2>&1; then
  fail "validate accepted a mapper no plugin exports"
fi
grep -q "no plugin exports mapper 'nope'" nope.out || fail "validate: $(cat nope.out)"

"$mrtrain" run tiny.yaml --progress lines >run.out 2>&1 || fail "run: $(cat run.out)"
[ -s out/tiny/model.mrt ] || fail "run wrote no model: $(cat run.out)"
# The test loss after one epoch must be far below the loss of the zero model it started from.
zero_loss=$(awk -F, '{ s += 0.5 * $1 * $1 } END { print s / NR }' line.csv)
test_loss=$(sed -n 's/.*"test_loss":\([0-9.e+-]*\).*/\1/p' out/tiny/metrics.jsonl)
[ -n "$test_loss" ] || fail "no test_loss in $(cat out/tiny/metrics.jsonl)"
awk -v t="$test_loss" -v z="$zero_loss" 'BEGIN { exit !(t < 0.01 * z) }' ||
  fail "test_loss $test_loss after one epoch, zero model $zero_loss: the plugin did not train"

# --- The installed example spec's own instructions, as written. ---
mkdir example && cd example
sed -n '/^# In an empty directory:/,/^# Relative paths/p' "$prefix/share/mrtrain/examples/huber_plugin.yaml" |
  sed -e '1d' -e '$d' -e 's/^#   //' >steps.sh
grep -q "mrtrain run huber_plugin.yaml" steps.sh || fail "no steps in the example spec"
sh -e steps.sh >steps.out 2>&1 || fail "the example spec's steps: $(cat steps.out)"
grep -q "^epoch 8/8 " steps.out || fail "the example did not train 8 epochs: $(cat steps.out)"
echo "PASS"
