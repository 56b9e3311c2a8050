"""The build-dataset job: annotations (+ frame manifest) -> a YOLO dataset folder (`main`).

readers -> plan (transforms/annotations, transforms/frames, images) -> shard_writer -> summary -> commit.
"""
