"""mrtrain_fuzz_target: one libFuzzer target, built two ways (see README.md).

For a target `name` whose sources define LLVMFuzzerTestOneInput:
  <name>_corpus_test  a cc_test that feeds it every file of corpus/<name>/ (tag "fuzz"), so the
                      normal `bazel test //...` replays the seeds and every crash found so far;
  <name>              the fuzzer (tags "fuzz", "manual"): under --config=fuzz it links
                      libFuzzer's main, otherwise corpus_main, so it also replays files given
                      on its command line in a normal build.
"""

def mrtrain_fuzz_target(name, srcs, deps = []):
    native.cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs,
        deps = deps,
        alwayslink = True,
    )

    corpus = native.glob(["corpus/%s/**" % name])

    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        args = ["test/fuzz/corpus/" + name],
        data = corpus,
        tags = ["fuzz"],
        deps = [
            ":" + name + "_lib",
            ":corpus_main",
        ],
    )

    native.cc_binary(
        name = name,
        testonly = True,
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = [
            "fuzz",
            "manual",
        ],
        deps = [":" + name + "_lib"] + select({
            ":fuzzing": [],
            "//conditions:default": [":corpus_main"],
        }),
    )
