"""The one place a SparkSession is created; everything else receives it."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession


def start_spark(app_name: str, master: str | None = None, settings: Mapping[str, str] | None = None) -> SparkSession:
    """Get or create the session.

    Under spark-submit the master and --conf values come from the command line and win over
    `settings` (getOrCreate keeps an existing context's settings); `master` is for in-process runs.
    """
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
        if master.startswith("local"):
            # Local workers must run this interpreter (the venv with yololake), not whatever python3 is first.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in (settings or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
