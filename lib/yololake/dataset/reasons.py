"""Reason codes for quarantined annotation rows (and skipped frames). Stable strings: users filter on them."""

# Frame-level: every annotation row of such a frame is quarantined with the frame's reason.
UNSAFE_FRAME_ID = "unsafe_frame_id"              # could place a file outside the output root
FRAME_NOT_IN_MANIFEST = "frame_not_in_manifest"
AMBIGUOUS_FRAME_ID = "ambiguous_frame_id"        # manifest lists it twice, or two ids share one file key
INVALID_IMAGE_SIZE = "invalid_image_size"        # width/height missing, non-numeric or not positive
UNSUPPORTED_IMAGE_FORMAT = "unsupported_image_format"  # YOLOv5 would skip the image
IMAGE_MISSING = "image_missing"
UNKNOWN_SPLIT = "unknown_split"                  # split column/file value is not mapped to train/val/test
CONFLICTING_SPLIT = "conflicting_split"          # rows of one frame name different splits

# Row-level.
MALFORMED_ROW = "malformed_row"                  # the reader could not parse it: too few or too many fields
UNREADABLE_FILE = "unreadable_file"              # a whole input file (zero-byte, corrupt), with on_unreadable_file
UNKNOWN_CLASS = "unknown_class"
NULL_COORDINATE = "null_coordinate"
NON_NUMERIC_COORDINATE = "non_numeric_coordinate"
BOX_OUTSIDE_IMAGE = "box_outside_image"
ZERO_AREA = "zero_area"                          # no area left after clipping to the image

# Frame-level, from reading the image where it lives (build.image_facts).
CORRUPT_IMAGE = "corrupt_image"                  # unreadable, truncated (no JPEG end marker), not an image
IMAGE_TOO_SMALL = "image_too_small"              # a side under 10 px: YOLOv5 calls it corrupt
IMAGE_SIZE_MISMATCH = "image_size_mismatch"      # the manifest or image_size disagrees with the displayed size

# Row-level, from a labeling tool's export (yololake.importers).
CROWD_BOX = "crowd_box"                          # COCO iscrowd=1: a region of many objects, not one object
IMAGE_NOT_IN_EXPORT = "image_not_in_export"      # COCO annotation whose image_id is not in `images`
ROTATED_BOX = "rotated_box"                      # CVAT / Label Studio rotation != 0 (annotations.rotated)
DIFFICULT = "difficult"                          # VOC difficult=1, with annotations.difficult: quarantine
MISSING_IMAGE_SIZE = "missing_image_size"        # Label Studio result without original_width/height
