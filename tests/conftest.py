"""One local SparkSession for the whole test run, and a generated sample lake."""
from __future__ import annotations

import os
import sys

import pytest
from s3_server import FaultProxy, MotoS3, set_dummy_credentials
from yololake.spark_session import start_spark


@pytest.fixture(scope="session")
def spark():
    os.environ.setdefault("SPARK_TESTING", "1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    set_dummy_credentials(os.environ)  # before the JVM starts: its Python workers inherit the environment
    # local[2,4]: two cores, and up to 4 attempts per task, so retry behaviour is the real one.
    session = start_spark("yololake-tests", "local[2,4]", {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "4",
        "spark.driver.memory": "2g",
    })
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory):
    """The generated lake (read-only for tests) and what was planted in it."""
    from yololake.samples.lake import generate

    root = str(tmp_path_factory.mktemp("lake"))
    return root, generate(root)


@pytest.fixture(scope="session")
def demo_dataset(spark, sample_lake, tmp_path_factory):
    """The build-dataset job run once on the sample lake with conf/demo.yaml: (the version folder it committed,
    summary, planted, lake). The output root (--out) is `summary["root"]`."""
    from pathlib import Path

    from yololake.build.config import load_config
    from yololake.build.main import run
    from yololake.build.plan import JobInputs
    from yololake.dataset.versions import current_folder

    lake, planted = sample_lake
    out = str(tmp_path_factory.mktemp("demo") / "deep" / "out")
    config = load_config(Path(__file__).resolve().parents[1] / "conf" / "demo.yaml")
    inputs = JobInputs((f"{lake}/annotations",), (f"{lake}/frames",), lake)
    summary = run(spark, config, inputs, out)
    return current_folder(out), {**summary, "root": out}, planted, lake


@pytest.fixture(scope="session")
def moto_s3():
    set_dummy_credentials(os.environ)
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_s3):
    """A fresh moto state with one bucket: returns (endpoint, bucket)."""
    import boto3
    import s3fs

    moto_s3.reset()
    s3fs.S3FileSystem.clear_instance_cache()
    boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name="us-east-1").create_bucket(Bucket="lake")
    return moto_s3.endpoint, "lake"


@pytest.fixture
def fault_proxy(moto_s3):
    proxy = FaultProxy(moto_s3.endpoint)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def clean_exports(spark, tmp_path_factory):
    """Each labeling tool's clean export (tests/exports.py) built once: fmt -> dict(export, images, out (the
    version folder), summary)."""
    from exports import FORMATS, build, write_export
    from yololake.dataset.versions import current_folder

    built = {}
    for fmt in FORMATS:
        root = tmp_path_factory.mktemp(f"export_{fmt}")
        export, images = write_export(fmt, root)
        summary = build(spark, fmt, export, images, root / "out")
        built[fmt] = {"export": export, "images": images, "out": current_folder(str(root / "out")),
                      "summary": summary}
    return built


@pytest.fixture(scope="session")
def yolov5_offline(tmp_path_factory):
    """The real YOLOv5 loader's modules, offline: its config folder holds the fonts it would download."""
    from yololake.train import yolov5_env

    os.environ["YOLOV5_CONFIG_DIR"] = yolov5_env.config_dir(str(tmp_path_factory.mktemp("yolov5_config")))
    from yolov5.utils import dataloaders, general

    return dataloaders, general


@pytest.fixture
def tiny_dataset(tmp_path):
    """The files the train launcher's resolve() reads: a committed dataset with no shards (dry runs read
    nothing else)."""
    import json

    root = tmp_path / "datasets" / "udacity"
    root.mkdir(parents=True)
    (root / "dataset.yaml").write_text("path: /x\ntrain: train.txt\nval: val.txt\nnc: 1\nnames: [car]\n")
    (root / "shards.json").write_text("[]\n")
    (root / "_SUCCESS").write_text(json.dumps({"run_id": "r1", "frames": 0, "boxes": 0}))
    return str(root)
