"""The labeling-tool export formats `annotations.format` accepts (kept free of Spark: the config imports it)."""

IMPORT_FORMATS = ("coco", "voc", "cvat", "labelstudio", "groundtruth")
