"""Benchmark the labeling-tool importers (build-dataset with annotations.format coco, voc, cvat, labelstudio,
groundtruth) against the maintained single-machine converters on the same export, side by side in one run.

    .venv/bin/python scripts/bench_import.py [--sizes 100000,1000000] [--formats coco,voc,...] [--work DIR]

For each size N (boxes) and format: write a synthetic export of N boxes (5 boxes per 640x480 frame, every 20th
frame a background frame, 5 classes; no images), then run
  job        yololake build-dataset --master local[*] --config conf/<fmt>.yaml, images.mode none,
             images.check_exists false, report off: the import and the whole build (labels, lists, stats)
  converter  globox (COCO, VOC, CVAT: AnnotationSet.from_* then save_yolo_v5) or label-studio-converter
             (Label Studio: convert_to_yolo); SageMaker Ground Truth has no maintained converter on PyPI
Peak memory (RSS, sampled every 0.1 s): "py driver" = the process started (the job's Python driver, which
streams COCO / Label Studio JSON), "driver" = that plus the JVM (in local mode the executors live in it),
"total" = everything, Python workers included. Results are printed as a Markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import bench_build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
FORMATS = ("coco", "voc", "cvat", "labelstudio", "groundtruth")
NAMES = ("car", "truck", "pedestrian", "bicyclist", "light")
W, H, PER_FRAME = 640, 480, 5


def frames(n_boxes: int, seed: int = 0):
    """(file name, [(class, x1, y1, x2, y2)]) until n_boxes boxes; every 20th frame has none."""
    rng, made, i = random.Random(seed), 0, 0
    while made < n_boxes:
        k = 0 if i % 20 == 19 else min(PER_FRAME, n_boxes - made)
        boxes = []
        for _ in range(k):
            x1, y1 = rng.randrange(0, W - 40), rng.randrange(0, H - 40)
            boxes.append((NAMES[rng.randrange(5)], x1, y1, rng.randrange(x1 + 8, W), rng.randrange(y1 + 8, H)))
        yield f"f{i:08d}.jpg", boxes
        made, i = made + k, i + 1


def write_coco(path: str, n: int) -> None:
    images, anns = [], []
    for i, (name, boxes) in enumerate(frames(n)):
        images.append({"id": 10 + 3 * i, "file_name": name, "width": W, "height": H})
        anns += [{"id": len(anns) + 1, "image_id": 10 + 3 * i, "category_id": 2 + 2 * NAMES.index(c),
                  "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
                 for c, x1, y1, x2, y2 in boxes]
    cats = [{"id": 2 + 2 * i, "name": c} for i, c in enumerate(NAMES)]
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)


def write_voc(folder: str, n: int) -> None:
    os.makedirs(folder)
    for name, boxes in frames(n):
        objects = "".join(f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin>"
                          f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
                          for c, x1, y1, x2, y2 in boxes)
        with open(os.path.join(folder, name[:-4] + ".xml"), "w") as f:
            f.write(f"<annotation><filename>{name}</filename><size><width>{W}</width><height>{H}</height>"
                    f"<depth>3</depth></size>{objects}</annotation>")


def write_cvat(path: str, n: int) -> None:
    labels = "".join(f"<label><name>{c}</name></label>" for c in NAMES)
    with open(path, "w") as f:
        f.write(f"<annotations><version>1.1</version><meta><task><labels>{labels}</labels></task></meta>")
        for i, (name, boxes) in enumerate(frames(n)):
            f.write(f'<image id="{i}" name="{name}" width="{W}" height="{H}">' + "".join(
                f'<box label="{c}" occluded="0" xtl="{x1}" ytl="{y1}" xbr="{x2}" ybr="{y2}" z_order="0"/>'
                for c, x1, y1, x2, y2 in boxes) + "</image>")
        f.write("</annotations>")


def write_labelstudio(path: str, n: int) -> None:
    with open(path, "w") as f:
        f.write("[")
        for i, (name, boxes) in enumerate(frames(n)):
            result = [{"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": W,
                       "original_height": H, "value": {"x": x1 / W * 100, "y": y1 / H * 100, "width": (x2 - x1) / W
                                                       * 100, "height": (y2 - y1) / H * 100, "rotation": 0,
                                                       "rectanglelabels": [c]}} for c, x1, y1, x2, y2 in boxes]
            task = {"id": i + 1, "data": {"image": f"/data/upload/1/{name}"}, "annotations": [{"result": result}]}
            f.write(("," if i else "") + json.dumps(task))
        f.write("]")


def write_groundtruth(path: str, n: int) -> None:
    cmap = {str(2 * i): c for i, c in enumerate(NAMES)}
    with open(path, "w") as f:
        for name, boxes in frames(n):
            anns = [{"class_id": 2 * NAMES.index(c), "left": x1, "top": y1, "width": x2 - x1, "height": y2 - y1}
                    for c, x1, y1, x2, y2 in boxes]
            f.write(json.dumps({"source-ref": f"s3://bucket/{name}", "job": {
                "image_size": [{"width": W, "height": H, "depth": 3}], "annotations": anns},
                "job-metadata": {"class-map": cmap, "type": "groundtruth/object-detection"}}) + "\n")


WRITERS = {"coco": (write_coco, "instances.json"), "voc": (write_voc, "voc"), "cvat": (write_cvat, "cvat.xml"),
           "labelstudio": (write_labelstudio, "export.json"), "groundtruth": (write_groundtruth, "output.manifest")}
CONVERTER = {
    "coco": "from globox import AnnotationSet as A; A.from_coco({src!r}).save_yolo_v5({out!r}, label_to_id={ids})",
    "voc": "from globox import AnnotationSet as A; A.from_pascal_voc({src!r}).save_yolo_v5({out!r}, label_to_id={ids})",
    "cvat": "from globox import AnnotationSet as A; A.from_cvat({src!r}).save_yolo_v5({out!r}, label_to_id={ids})",
    "labelstudio": ("from label_studio_converter import Converter; Converter(config={config!r}, project_dir=None, "
                    "download_resources=False).convert_to_yolo(input_data={src!r}, output_dir={out!r}, "
                    "is_dir=False)"),
}
LS_CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
             + "".join(f'<Label value="{c}"/>' for c in NAMES) + "</RectangleLabels></View>")


def measure(cmd: list[str]) -> dict:
    """Run `cmd` (scripts/bench_build.measure); wall seconds and peak RSS (MB): the process itself (py), it
    and its non-worker children (driver), all (total)."""
    m = bench_build.measure(cmd)
    return {"wall": m["wall"], "py": m["own_mb"], "driver": m["driver_mb"], "total": m["total_mb"],
            "stdout": m["stdout"]}


def job(fmt: str, src: str, out: str, master: str) -> dict:
    cmd = [os.path.join(os.path.dirname(PY), "yololake"), "build-dataset", "--master", master, "--config",
           os.path.join(ROOT, "conf", f"{fmt}.yaml"), "--annotations", src, "--out", out,
           "--set", "images.mode=none", "--set", "images.check_exists=false", "--set", "report.enabled=false"]
    return measure(cmd)


def converter(fmt: str, src: str, out: str) -> dict | None:
    if fmt not in CONVERTER:
        return None
    code = CONVERTER[fmt].format(src=src, out=out, ids={c: i for i, c in enumerate(NAMES)}, config=LS_CONFIG)
    return measure([PY, "-c", code])


def row(label: str, r: dict, n: int) -> str:
    return (f"| {label} | {r['wall']:.1f} | {n / r['wall']:,.0f} | {r['py']:,.0f} | {r['driver']:,.0f} | "
            f"{r['total']:,.0f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--work", default="/tmp/bench_import")
    p.add_argument("--master", default="local[*]")
    p.add_argument("--programs", default="job,converter")
    args = p.parse_args(argv)
    programs = args.programs.split(",")
    lines = ["| program | wall (s) | boxes/s | py driver peak (MB) | driver peak (MB) | total peak (MB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for n in map(int, args.sizes.split(",")):
        for fmt in args.formats.split(","):
            folder = os.path.join(args.work, f"{fmt}_{n}")
            write, name = WRITERS[fmt]
            src = os.path.join(folder, name)
            if not os.path.exists(src):
                os.makedirs(folder, exist_ok=True)
                write(src, n)
            lines.append(f"| **{fmt}, {n:,} boxes** | | | | | |")
            if "job" in programs:
                out = os.path.join(folder, f"job_out_{time.time_ns()}")
                lines.append(row("job (import + build)", job(fmt, src, out, args.master), n))
            result = converter(fmt, src, os.path.join(folder, f"conv_out_{time.time_ns()}")) \
                if "converter" in programs else None
            if result:
                lines.append(row("globox" if fmt != "labelstudio" else "label-studio-converter", result, n))
            print(lines[-1] if len(lines) > 3 else "", flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
