"""yololake: Spark jobs that turn a data lake of video frames and box annotations into YOLOv5 datasets."""

__version__ = "0.1.0"
