"""The build-dataset job: annotations (+ frame manifest) -> a YOLO dataset folder (`main`).

readers -> plan (transforms/annotations, transforms/frames, image_facts) -> shard_writer (images) -> summary -> commit.
"""
