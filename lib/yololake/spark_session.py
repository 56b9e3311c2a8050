"""The one place a SparkSession is created; everything else receives it."""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

from yololake.jvm_archive import with_java_options

LOOPBACK = "127.0.0.1"


def start_spark(app_name: str, master: str | None = None, settings: Mapping[str, str] | None = None,
                ui_bind: str = "loopback") -> SparkSession:
    """Get or create the session.

    Under spark-submit the master and --conf values come from the command line and win over
    `settings` (getOrCreate keeps an existing context's settings); `master` is for in-process runs.

    In local mode the JVM started here binds its UI (and driver) to 127.0.0.1 unless `ui_bind` is
    "all_interfaces": Spark's UI otherwise listens on every interface, where anyone on the network may
    browse the job's configuration and kill its stages. Spark reads the address from SPARK_LOCAL_IP only,
    so it is set for the launch; a SPARK_LOCAL_IP the user set wins, and spark-submit binds before we run.
    """
    builder = SparkSession.builder.appName(app_name)
    effective_master = master or (settings or {}).get("spark.master", "")
    settings = dict(settings or {})
    if master:
        builder = builder.master(master)
        if master.startswith("local"):
            # Local workers must run this interpreter (the venv with yololake), not whatever python3 is first.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # The driver JVM is the whole cluster here: start it on the class archive (jvm_archive).
            settings = with_java_options(settings)
    for key, value in settings.items():
        builder = builder.config(key, value)
    loopback = effective_master.startswith("local") and ui_bind == "loopback" and "SPARK_LOCAL_IP" not in os.environ
    if loopback:
        os.environ["SPARK_LOCAL_IP"] = LOOPBACK  # read by the JVM that getOrCreate launches, if it launches one
    try:
        spark = builder.getOrCreate()
    finally:
        if loopback:
            del os.environ["SPARK_LOCAL_IP"]
    spark.sparkContext.setLogLevel("WARN")
    return spark


SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
INPUT_BYTES_PER_PARTITION = 32 * 2**20
"""Input bytes (as stored: compressed parquet, CSV text) per shuffle partition when Spark's count is sized
from the input. A partition of 32 MB of parquet is a few hundred MB of rows in memory."""


def size_shuffle_partitions(spark: SparkSession, input_bytes: int) -> int:
    """Unless the config or spark-submit --conf set it, size `spark.sql.shuffle.partitions` from the input:
    two tasks per core (an idle core waits for no straggler), more once the input needs them. Spark's default
    of 200 costs a 100k-frame job more in task overhead than its data work, and any one constant suits only
    one input size and one cluster. Returns the count in force."""
    if spark.sparkContext.getConf().contains(SHUFFLE_PARTITIONS):
        return int(spark.conf.get(SHUFFLE_PARTITIONS))
    count = shuffle_partitions_for(input_bytes, spark.sparkContext.defaultParallelism)
    spark.conf.set(SHUFFLE_PARTITIONS, str(count))
    return count


def shuffle_partitions_for(input_bytes: int, cores: int) -> int:
    return max(2 * cores, math.ceil(input_bytes / INPUT_BYTES_PER_PARTITION))
