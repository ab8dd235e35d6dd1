#!/bin/sh
# Quick start: installs what is missing, builds mrtrain optimised and trains the Fashion-MNIST
# MLP example in local mode, printing progress and test accuracy per epoch.
set -eu
cd "$(dirname "$0")/../.."
tools/setup/install_deps.sh
exec bazel run --config=opt //tools/mrtrain -- run jobs/examples/fashion_mnist_mlp.yaml "$@"
