"""The local Spark UI listens on 127.0.0.1 unless the config says otherwise: checked on the real socket."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

# A fresh process: the JVM binds when it starts, so each setting needs its own. It prints the addresses
# (hex, as the kernel lists them) of every socket listening on the UI's port.
_PROBE = textwrap.dedent("""
    import sys
    from yololake.spark_session import start_spark

    spark = start_spark("ui-probe", "local[1]", {"spark.ui.enabled": "true", "spark.ui.port": "0"}, sys.argv[1])
    port = int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    spark.stop()
    print("LISTENING", *sorted(found))
""")
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
ANY = {"00000000", "00000000000000000000000000000000"}


def _ui_addresses(ui_bind: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "SPARK_LOCAL_IP"}  # the user's own setting would win
    done = subprocess.run([sys.executable, "-c", _PROBE, ui_bind], capture_output=True, text=True, timeout=180,
                          env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("LISTENING")]
    assert done.returncode == 0 and lines, done.stderr[-2000:]
    return set(lines[-1].split()[1:])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the kernel's socket table")
def test_the_local_ui_listens_on_loopback_only_unless_configured():
    loopback = _ui_addresses("loopback")
    assert loopback and loopback <= LOOPBACK, loopback
    everywhere = _ui_addresses("all_interfaces")
    assert everywhere and everywhere <= ANY, everywhere


_PARTITIONS_PROBE = textwrap.dedent("""
    import sys
    from yololake.spark_session import size_shuffle_partitions, start_spark

    settings = {"spark.ui.enabled": "false", **({"spark.sql.shuffle.partitions": sys.argv[1]} if sys.argv[1] else {})}
    spark = start_spark("partitions-probe", "local[2]", settings)
    counts = [size_shuffle_partitions(spark, size) for size in (0, 10 * 2**20, 2**30)]
    print("PARTITIONS", *counts, spark.conf.get("spark.sql.shuffle.partitions"))
    spark.stop()
""")


@pytest.mark.parametrize("configured, expected", [
    ("", "PARTITIONS 4 4 32 32"),    # two per core, until the input needs more (32 MB of input each)
    ("7", "PARTITIONS 7 7 7 7"),     # a value the config (or spark-submit --conf) gives always wins
])
def test_shuffle_partitions_are_sized_from_the_input_unless_configured(configured, expected):
    run = subprocess.run([sys.executable, "-c", _PARTITIONS_PROBE, configured], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    assert expected in run.stdout, run.stdout + run.stderr[-2000:]
