"""One local SparkSession for the whole test run, and a generated sample lake."""
from __future__ import annotations

import os
import sys

import pytest

from yololake.spark_session import start_spark


@pytest.fixture(scope="session")
def spark():
    os.environ.setdefault("SPARK_TESTING", "1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
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
    from yololake.sample_lake import generate

    root = str(tmp_path_factory.mktemp("lake"))
    return root, generate(root)


@pytest.fixture(scope="session")
def demo_dataset(spark, sample_lake, tmp_path_factory):
    """The build-dataset job run once on the sample lake with conf/demo.yaml: (out, summary, planted, lake)."""
    from pathlib import Path

    from yololake.build_dataset import run
    from yololake.config import load_config
    from yololake.pipeline import JobInputs

    lake, planted = sample_lake
    out = str(tmp_path_factory.mktemp("demo") / "deep" / "out")
    config = load_config(Path(__file__).resolve().parents[1] / "conf" / "demo.yaml")
    inputs = JobInputs((f"{lake}/annotations",), (f"{lake}/frames",), lake)
    summary = run(spark, config, inputs, out)
    return out, summary, planted, lake
