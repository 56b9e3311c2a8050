"""Labeling-tool exports as inputs of the build-dataset job: annotations.format coco, voc, cvat, labelstudio,
groundtruth. Each importer is a reader (one module per tool): it yields the job's standard annotation table and
a frame table taken from the export (see `common`), so validation, quarantine, splits, shards, lists, report and
caches stay one pipeline."""
