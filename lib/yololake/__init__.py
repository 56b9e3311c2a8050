"""yololake: Spark jobs that turn a data lake of video frames and box annotations into YOLO datasets and runs.

The code map is in the README ("Code map").
"""
