#!/bin/sh
# Soak test of fault tolerance: hundreds of seeded SIGKILL/SIGSTOP trials against real clusters
# (test/integration/fault_test.cc), each required to end with the failure-free model.
#   tools/soak.sh [TRIALS] [SEED]      defaults: 300 trials, seed 1; about 1.5 s per trial
set -eu
cd "$(dirname "$0")/.."
trials=${1:-300}
seed=${2:-1}
bazel test //test/integration:fault_test --test_output=all --cache_test_results=no \
  --test_timeout=86400 --test_arg="SIGKILL*" \
  --test_env=MRTRAIN_FAULT_TRIALS="$trials" --test_env=MRTRAIN_FAULT_SEED="$seed" 2>&1 |
  grep -E "random trials|passed|failed|FAILED|trial [0-9]+ "
