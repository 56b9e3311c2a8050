"""The JVM class archive for local runs: `yololake jvm-archive` makes one with a real warm-up build, a local
Spark JVM then loads its classes from it, a truncated archive is never put in place, the user's options win."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from yololake import jvm_archive

pytestmark = pytest.mark.slow

# A local Spark query in a fresh JVM with the given driver options; -Xshare:on makes an unusable archive fatal.
PROBE = """
import sys
from yololake.spark_session import start_spark
spark = start_spark("archive-probe", "local[1]", {"spark.ui.enabled": "false",
                    "spark.driver.extraJavaOptions": "-Xshare:on -Xlog:class+load=info:file=" + sys.argv[1]})
print(spark.range(1000).selectExpr("sum(id) AS s").collect()[0]["s"])
"""


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yololake", "jvm-archive", *args], env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jvm")
    env = {**os.environ, jvm_archive.ENV: str(folder), "PYSPARK_PYTHON": sys.executable}
    done = _cli(env)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, env, done


def test_the_warm_up_writes_one_archive_and_a_local_jvm_loads_spark_from_it(made, tmp_path):
    folder, env, done = made
    (archive,) = folder.iterdir()  # no .part file left beside it
    assert archive.name.startswith("spark-classes-") and archive.suffix == ".jsa"
    assert done.stdout.split() == [f"-XX:SharedArchiveFile={archive}"]
    assert "a warm-up build writes" in done.stderr

    log = tmp_path / "classes.log"
    probe = subprocess.run([sys.executable, "-c", PROBE, str(log)], env=env, capture_output=True, text=True,
                           timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.strip().splitlines()[-1] == str(sum(range(1000)))
    loads = log.read_text().splitlines()
    from_archive = [line for line in loads if "shared objects file (top)" in line]
    spark_from_archive = [line for line in from_archive if "org.apache.spark.sql." in line]
    assert len(spark_from_archive) > 1000, (len(from_archive), len(loads))  # Spark SQL's classes, not just the JDK's

    again = _cli(env)  # the archive exists: options printed, nothing rebuilt
    assert again.returncode == 0 and again.stdout == done.stdout and "warm-up" not in again.stderr
    assert [p.name for p in folder.iterdir()] == [archive.name]


def test_a_truncated_archive_is_refused_before_it_could_crash_a_jvm(made, tmp_path):
    folder, _, _ = made
    (archive,) = folder.iterdir()
    java = jvm_archive._java()
    assert jvm_archive._maps(java, archive)
    truncated = tmp_path / "truncated.jsa"
    with open(archive, "rb") as f:
        truncated.write_bytes(f.read(archive.stat().st_size // 4))
    assert not jvm_archive._maps(java, truncated)  # the JVM dies on it (SIGBUS): such a file is never renamed in


def test_options_the_user_set_come_last_and_an_extra_class_path_drops_the_archive(monkeypatch, tmp_path):
    monkeypatch.setenv(jvm_archive.ENV, str(tmp_path))
    archive = jvm_archive.archive_path()
    archive.write_bytes(b"x")  # as if made (its content is not read here)
    merged = jvm_archive.with_java_options({"spark.driver.extraJavaOptions": "-XX:SharedArchiveFile=/mine.jsa -Dx=1"})
    assert merged["spark.driver.extraJavaOptions"] == (f"-XX:SharedArchiveFile={archive} "
                                                      "-XX:SharedArchiveFile=/mine.jsa -Dx=1")  # the JVM takes the last
    other = {"spark.driver.extraClassPath": "/opt/extra.jar", "spark.driver.extraJavaOptions": "-Dx=1"}
    assert jvm_archive.with_java_options(other) == other  # the archive's class path would not match
    monkeypatch.setenv(jvm_archive.ENV, "off")
    assert jvm_archive.with_java_options({"spark.master": "local[1]"}) == {"spark.master": "local[1]"}
    assert jvm_archive.archive_path() is None


def test_a_failed_warm_up_says_so_in_one_line_and_is_not_repeated_until_retry(tmp_path):
    spark_home = tmp_path / "no-spark"  # a Spark install without Spark: the warm-up's JVM cannot start
    (spark_home / "jars").mkdir(parents=True)
    env = {**os.environ, jvm_archive.ENV: str(tmp_path / "archives"), "SPARK_HOME": str(spark_home),
           "PYSPARK_PYTHON": sys.executable}
    first = _cli(env)
    assert first.returncode == 2, first.stderr[-2000:]
    (failed,) = (tmp_path / "archives").glob("*.failed")
    assert f"jvm-archive: error: the JVM class archive could not be made ({failed} says why)" in first.stderr
    assert "warm-up run exited 1" in failed.read_text()
    assert not list((tmp_path / "archives").glob("*.jsa")) and not list((tmp_path / "archives").glob(".*part"))

    again = _cli(env)  # a setup run after the failure: no second warm-up, no archive option, exit 0
    assert again.returncode == 0 and again.stdout.strip() == ""
    assert "the warm-up failed before" in again.stderr and "a warm-up build writes" not in again.stderr
    retried = _cli(env, "--retry")
    assert retried.returncode == 2 and "a warm-up build writes" in retried.stderr
