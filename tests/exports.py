"""Labeling-tool exports with known boxes, written to each tool's documented schema, and their images.

One truth (IMAGES, BOXES: integer pixel corners) is written five ways: COCO instances.json (non-contiguous
image and category ids), LabelImg / Pascal VOC XML, CVAT for images 1.1 XML, Label Studio JSON (all three image
reference forms) and a SageMaker Ground Truth output manifest (a sparse class-map). Each has a background image.
The expected YOLO labels are computed here from the truth, not from any of the writers.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

from PIL import Image

IMAGES = {"a.jpg": (64, 48), "b.jpg": (80, 60), "c.jpg": (64, 48), "d.jpg": (100, 40), "bg.jpg": (64, 48)}
BACKGROUND = "bg.jpg"
BOXES = {
    "a.jpg": [("car", 4, 6, 30, 40), ("person", 10, 2, 20, 47)],
    "b.jpg": [("bike", 0, 0, 80, 60), ("car", 33, 21, 50, 59)],
    "c.jpg": [("person", 1, 1, 63, 47)],
    "d.jpg": [("car", 3, 5, 97, 35), ("bike", 50, 10, 60, 20), ("person", 7, 7, 9, 39)],
}
COCO_CATEGORIES = {"car": 3, "person": 7, "bike": 12}      # ids with gaps; names by id: car, person, bike
CVAT_LABELS = ["person", "car", "bike"]                    # the export's own order
GT_CLASS_MAP = {"0": "car", "4": "person", "9": "bike"}    # sparse ids; names by id: car, person, bike
SORTED = ["bike", "car", "person"]                         # VOC and Label Studio: names found, sorted


def write_images(folder: str | Path, images: dict = IMAGES) -> str:
    os.makedirs(folder, exist_ok=True)
    for i, (name, (w, h)) in enumerate(images.items()):
        Image.new("RGB", (w, h), (40 + 30 * i, 90, 160)).save(os.path.join(folder, name), "JPEG", quality=80)
    return str(folder)


def expected_labels(names: list[str], boxes: dict = BOXES, images: dict = IMAGES) -> dict[str, list[tuple]]:
    """stem -> sorted (class id, cx, cy, w, h) of the truth, for every image (background: [])."""
    out = {}
    for name, (w, h) in images.items():
        rows = [(names.index(c), (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
                for c, x1, y1, x2, y2 in boxes.get(name, [])]
        out[os.path.splitext(name)[0]] = sorted(rows)
    return out


def write_coco(path: str | Path, annotations_extra: list | None = None, images_extra: list | None = None) -> str:
    images = [{"id": 100 + 7 * i, "file_name": name, "width": w, "height": h}
              for i, (name, (w, h)) in enumerate(IMAGES.items())]
    ids = {im["file_name"]: im["id"] for im in images}
    anns = []
    for name, boxes in BOXES.items():
        for c, x1, y1, x2, y2 in boxes:
            anns.append({"id": 1000 + 3 * len(anns), "image_id": ids[name], "category_id": COCO_CATEGORIES[c],
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                         "segmentation": []})
    doc = {"info": {"description": "yololake test"}, "licenses": [],
           "images": images + (images_extra or []), "annotations": anns + (annotations_extra or []),
           "categories": [{"id": i, "name": n, "supercategory": "thing"}
                          for n, i in sorted(COCO_CATEGORIES.items(), key=lambda kv: -kv[1])]}
    Path(path).write_text(json.dumps(doc))
    return str(path)


def voc_xml(name: str, size: tuple[int, int], boxes: list[tuple], difficult: set[int] = frozenset()) -> str:
    objects = "".join(
        f"<object><name>{c}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{int(i in difficult)}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for i, (c, x1, y1, x2, y2) in enumerate(boxes))
    return (f"<annotation><folder>images</folder><filename>{name}</filename>"
            f"<path>C:\\Users\\labeler\\Desktop\\images\\{name}</path><source><database>Unknown</database></source>"
            f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{objects}</annotation>")


def write_voc(folder: str | Path) -> str:
    os.makedirs(folder, exist_ok=True)
    for name, size in IMAGES.items():
        Path(folder, os.path.splitext(name)[0] + ".xml").write_text(voc_xml(name, size, BOXES.get(name, [])))
    return str(folder)


def cvat_box(c: str, x1, y1, x2, y2, rotation: float = 0.0) -> str:
    rot = f' rotation="{rotation:.2f}"' if rotation else ""
    return (f'<box label={quoteattr(c)} source="manual" occluded="0" xtl="{x1:.2f}" ytl="{y1:.2f}" '
            f'xbr="{x2:.2f}" ybr="{y2:.2f}"{rot} z_order="0"></box>')


def cvat_meta(labels: list[str], extra: str = "") -> str:
    labels_xml = "".join(f"<label><name>{n}</name><color>#ff0000</color><type>rectangle</type><attributes/>"
                         "</label>" for n in labels)
    return (f"<version>1.1</version><meta><task><id>1</id><name>test</name><size>5</size><mode>annotation</mode>"
            f"{extra}<labels>{labels_xml}</labels></task></meta>")


def write_cvat_images(path: str | Path, extra_boxes: dict | None = None) -> str:
    images = []
    for i, (name, (w, h)) in enumerate(IMAGES.items()):
        boxes = "".join(cvat_box(*b) for b in BOXES.get(name, []))
        boxes += "".join((extra_boxes or {}).get(name, []))
        images.append(f'<image id="{i}" name="{name}" width="{w}" height="{h}">{boxes}</image>')
    Path(path).write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>{cvat_meta(CVAT_LABELS)}'
                          f'{"".join(images)}</annotations>')
    return str(path)


def ls_reference(name: str, i: int) -> str:
    """The three ways Label Studio refers to an image (uploaded, local storage), cycling; s3 is unit-tested."""
    return [f"/data/upload/7/{name}", f"/data/local-files/?d=local/{name}"][i % 2]


def ls_result(c: str, x1, y1, x2, y2, w: int, h: int, rotation: float = 0.0, i: int = 0) -> dict:
    return {"id": f"r{i}", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": w, "original_height": h, "image_rotation": 0,
            "value": {"x": x1 / w * 100, "y": y1 / h * 100, "width": (x2 - x1) / w * 100,
                      "height": (y2 - y1) / h * 100, "rotation": rotation, "rectanglelabels": [c]}}


def write_labelstudio(path: str | Path, extra_tasks: list | None = None, extra_results: dict | None = None) -> str:
    tasks = []
    for i, (name, (w, h)) in enumerate(IMAGES.items()):
        results = [ls_result(*b, w, h, i=j) for j, b in enumerate(BOXES.get(name, []))]
        results += (extra_results or {}).get(name, [])
        tasks.append({"id": i + 1, "data": {"image": ls_reference(name, i)}, "predictions": [],
                      "annotations": [{"id": 50 + i, "completed_by": 1, "was_cancelled": False,
                                       "created_at": "2026-01-01T00:00:00Z", "result": results}]})
    Path(path).write_text(json.dumps(tasks + (extra_tasks or []), indent=1))
    return str(path)


def gt_line(name: str, size: tuple[int, int], boxes: list[tuple], attr: str = "cars-job") -> dict:
    ids = {n: int(i) for i, n in GT_CLASS_MAP.items()}
    return {"source-ref": name,
            attr: {"image_size": [{"width": size[0], "height": size[1], "depth": 3}],
                   "annotations": [{"class_id": ids[c], "left": x1, "top": y1, "width": x2 - x1, "height": y2 - y1}
                                   for c, x1, y1, x2, y2 in boxes]},
            f"{attr}-metadata": {"objects": [{"confidence": 0.9} for _ in boxes], "class-map": GT_CLASS_MAP,
                                 "type": "groundtruth/object-detection", "human-annotated": "yes",
                                 "creation-date": "2026-01-01T00:00:00", "job-name": f"labeling-job/{attr}"}}


def write_groundtruth(path: str | Path, extra_lines: list[str] | None = None) -> str:
    lines = [json.dumps(gt_line(name, size, BOXES.get(name, []))) for name, size in IMAGES.items()]
    Path(path).write_text("\n".join(lines + (extra_lines or [])) + "\n")
    return str(path)


CONF = Path(__file__).resolve().parents[1] / "conf"
FORMATS = ("coco", "voc", "cvat", "labelstudio", "groundtruth")
NAMES = {"coco": ["car", "person", "bike"], "voc": SORTED, "cvat": CVAT_LABELS, "labelstudio": SORTED,
         "groundtruth": ["car", "person", "bike"]}


def write_export(fmt: str, root: str | Path) -> tuple[str, str]:
    """The clean export of `fmt` and its images folder under `root`: (export path, --images)."""
    root = Path(root)
    images = write_images(root / "images")
    if fmt == "labelstudio":  # uploaded files under <project>/, local storage under local/
        write_images(root / "images" / "7")
        write_images(root / "images" / "local")
    export = {"coco": lambda: write_coco(root / "instances.json"), "voc": lambda: write_voc(root / "voc"),
              "cvat": lambda: write_cvat_images(root / "annotations.xml"),
              "labelstudio": lambda: write_labelstudio(root / "export.json"),
              "groundtruth": lambda: write_groundtruth(root / "output.manifest")}[fmt]()
    return export, images


def build(spark, fmt: str, export: str, images: str, out: str | Path, frames=(), overrides=()) -> dict:
    """The build-dataset job on an export with conf/<fmt>.yaml (no report); its summary."""
    from yololake.build.config import load_config
    from yololake.build.main import run
    from yololake.build.plan import JobInputs

    config = load_config(CONF / f"{fmt}.yaml", ["report.enabled=false", *overrides])
    return run(spark, config, JobInputs((str(export),), tuple(frames), images), str(out))


def read_labels(version: str | Path) -> dict[str, list[tuple]]:
    """stem -> sorted (class id, cx, cy, w, h) of every label file of a built version."""
    out = {}
    for path in Path(version).glob("labels/*/*/*.txt"):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        out[path.stem] = sorted((int(r[0]), *map(float, r[1:])) for r in rows)
    return out


def same_labels(got: dict, expected: dict, tol: float = 1e-6) -> bool:
    return got.keys() == expected.keys() and all(
        len(got[k]) == len(expected[k]) and all(
            a[0] == b[0] and all(abs(x - y) <= tol for x, y in zip(a[1:], b[1:])) for a, b in zip(got[k], expected[k]))
        for k in got)
