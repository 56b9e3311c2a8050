"""The training launcher: stage a yololake dataset, prebuild YOLOv5's label cache, preflight, run YOLOv5.

`yololake train` (main.py), `yololake detect` (detect.py) and `yololake val` (val.py).
"""
