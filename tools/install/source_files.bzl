"""source_files: the source files a target was built from, as files and runfiles.

//tools:install ships the plugin API headers (the `hdrs` of //engine/api) and the example
plugin's sources (the `srcs` of //jobs/plugins:libmrtrain_example_plugins.so). Reading them
through an aspect on those public targets keeps the installed set equal to what the targets
declare, with no second list to keep in step and no extra visibility on single files.
"""

_SourceFilesInfo = provider(
    doc = "The files a target lists in its srcs and hdrs attributes.",
    fields = {"srcs": "list of File", "hdrs": "list of File"},
)

def _source_files_aspect_impl(target, ctx):
    return [_SourceFilesInfo(
        srcs = getattr(ctx.rule.files, "srcs", []),
        hdrs = getattr(ctx.rule.files, "hdrs", []),
    )]

_source_files_aspect = aspect(implementation = _source_files_aspect_impl)

def _source_files_impl(ctx):
    files = []
    for target in ctx.attr.targets:
        files += getattr(target[_SourceFilesInfo], ctx.attr.attribute)
    return [DefaultInfo(files = depset(files), runfiles = ctx.runfiles(files = files))]

source_files = rule(
    implementation = _source_files_impl,
    doc = "The `attribute` files (srcs or hdrs) of `targets`, in their source-tree paths.",
    attrs = {
        "attribute": attr.string(mandatory = True, values = ["srcs", "hdrs"]),
        "targets": attr.label_list(mandatory = True, aspects = [_source_files_aspect]),
    },
)
