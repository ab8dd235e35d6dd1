#!/bin/sh
# Installs mrtrain under a prefix, for users who build plugins outside this repository:
#
#   bazel run --config=opt //tools:install -- --prefix DIR
#
#   DIR/bin/mrtrain                                     the command line
#   DIR/include/mrtrain/engine/api/*.h                  the plugin API (standard headers only):
#                                                       compile plugins with -I DIR/include/mrtrain
#   DIR/share/mrtrain/examples/example_plugins.cc       an example plugin (docs/plugins.md)
#   DIR/share/mrtrain/examples/huber_plugin.yaml        a job spec using it
#
# Files come from the runfiles of //tools:install: tools/BUILD puts there the binary, the `hdrs`
# of //engine/api and the `srcs` of the example plugin library. Installing again replaces
# them; each file is written next to its destination and renamed into place, so a running
# mrtrain is never overwritten in place. A relative DIR is taken from the directory `bazel run`
# was started in.
set -eu

usage() {
  echo "usage: bazel run --config=opt //tools:install -- --prefix DIR"
}

fail() {
  echo "install: $*" >&2
  exit 1
}

prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { usage >&2; exit 2; }; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  echo "install: --prefix DIR is required" >&2
  usage >&2
  exit 2
fi
case "$prefix" in
  /*) ;;
  *) prefix="${BUILD_WORKING_DIRECTORY:-$PWD}/$prefix" ;;
esac

# The runfiles tree: beside this script under `bazel run`, the caller's inside a test.
if [ -d "$0.runfiles/mrtrain" ]; then
  runfiles="$0.runfiles/mrtrain"
elif [ -n "${RUNFILES_DIR:-}" ] && [ -d "$RUNFILES_DIR/mrtrain" ]; then
  runfiles="$RUNFILES_DIR/mrtrain"
elif [ -n "${TEST_SRCDIR:-}" ] && [ -d "$TEST_SRCDIR/mrtrain" ]; then
  runfiles="$TEST_SRCDIR/mrtrain"
else
  fail "cannot find the runfiles of //tools:install; run it with bazel run"
fi

mrtrain_bin="$runfiles/tools/mrtrain/mrtrain"
[ -x "$mrtrain_bin" ] || fail "missing $mrtrain_bin in the runfiles"
# The binary must not need libraries from Bazel's output tree, which the prefix will outlive.
if command -v ldd >/dev/null 2>&1; then
  missing_libs=$(ldd "$mrtrain_bin" | grep -e 'not found' -e 'bazel-out' -e '_solib' || true)
  [ -z "$missing_libs" ] || fail "$mrtrain_bin links libraries of the build tree:
$missing_libs"
fi

case "$(readlink -f "$mrtrain_bin")" in
  */bazel-out/*-opt/bin/*) ;;
  *) echo "install: warning: not an optimised build; use bazel run --config=opt" >&2 ;;
esac

mkdir -p "$prefix" 2>/dev/null || fail "cannot create prefix $prefix"
if [ ! -d "$prefix" ] || [ ! -w "$prefix" ]; then fail "prefix $prefix is not a writable directory"; fi

# new_temp DEST: prints the name of a new empty file beside DEST, creating DEST's directory.
new_temp() {
  mkdir -p "$(dirname "$1")" 2>/dev/null || fail "cannot create $(dirname "$1")"
  mktemp "$1.install-tmp.XXXXXX" 2>/dev/null || fail "cannot write in $(dirname "$1")"
}

# commit TMP DEST MODE: gives TMP its mode and renames it to DEST.
commit() {
  chmod "$3" "$1"
  mv -f "$1" "$2" || { rm -f "$1"; fail "cannot replace $2"; }
  echo "installed $2"
}

# install_file SRC DEST MODE: copies SRC (following runfiles symlinks) to DEST.
install_file() {
  tmp=$(new_temp "$2")
  cp -L "$1" "$tmp" || { rm -f "$tmp"; fail "cannot copy $1 to $tmp"; }
  commit "$tmp" "$2" "$3"
}

[ -f "$runfiles/engine/api/plugin.h" ] || fail "missing engine/api/plugin.h in the runfiles"
[ -f "$runfiles/jobs/plugins/example_plugins.cc" ] ||
  fail "missing jobs/plugins/example_plugins.cc in the runfiles"

install_file "$mrtrain_bin" "$prefix/bin/mrtrain" 755
for header in "$runfiles"/engine/api/*.h; do
  install_file "$header" "$prefix/include/mrtrain/engine/api/$(basename "$header")" 644
done
examples="$prefix/share/mrtrain/examples"
for source in "$runfiles"/jobs/plugins/*.cc; do
  install_file "$source" "$examples/$(basename "$source")" 644
done

# The example spec, with paths relative to the directory the plugin is built in.
spec_tmp=$(new_temp "$examples/huber_plugin.yaml")
cat >"$spec_tmp" <<EOF
# Robust linear regression from a plugin library: the Huber-loss mapper and the
# gradient-clipping SGD reducer of example_plugins.cc (docs/plugins.md in the mrtrain sources).
# In an empty directory:
#   cp $examples/example_plugins.cc $examples/huber_plugin.yaml .
#   g++ -std=c++17 -O2 -shared -fPIC -I$prefix/include/mrtrain \\
#       example_plugins.cc -o libmrtrain_example_plugins.so
#   awk 'BEGIN { srand(1); split("0.5 -1 2 0 1.5 -0.5", w, " ")
#     for (i = 0; i < 5000; i++) { y = 0.3 + 0.1 * (rand() - 0.5); x = ""
#       for (j = 1; j <= 6; j++) { v = 2 * rand() - 1; y += w[j] * v; x = x "," v }
#       print y x } }' > huber_train.csv
#   $prefix/bin/mrtrain validate huber_plugin.yaml
#   $prefix/bin/mrtrain run huber_plugin.yaml
# Relative paths are relative to the working directory. Every key is documented in
# jobs/spec/SCHEMA.md in the mrtrain sources.
plugins:
  - libmrtrain_example_plugins.so

data:
  train:
    path: huber_train.csv            # label first, then the features; no header
    format: csv
    partitions: 4

model:
  plugin: huber
  params:
    delta: 1.0                       # residuals beyond this count linearly
  init: zeros

update:
  plugin: clipped_sgd
  params:
    clip: 5.0                        # each gradient element is clipped to [-5, 5]
  learning_rate: 0.2

training:
  epochs: 8
  rounds_per_epoch: 10
  seed: 5

output:
  dir: out/huber_plugin
EOF
commit "$spec_tmp" "$examples/huber_plugin.yaml" 644

echo "mrtrain is installed in $prefix: run $prefix/bin/mrtrain; compile plugins with" \
  "-I$prefix/include/mrtrain"
