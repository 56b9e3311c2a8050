"""A class-data-sharing archive of Spark's classes for local runs: the JVM maps the classes it loaded in a
warm-up run instead of reading and verifying them from ~250 jars again.

Measured on 2 cores (docs/benchmarks.md): a cold local build of a small lake spends most of its time loading
and compiling Spark itself, not on rows. The archive (JDK's dynamic CDS, JEP 350) is tied to one JVM build
and one class path, so its file name carries a key of both; a mismatch is never used. A truncated archive
crashes the JVM (SIGBUS), so an archive is only ever used after the run that wrote it exited cleanly and a
JVM mapped it: it is written under a temporary name, checked, then renamed into place.

    yololake jvm-archive            # create it if missing (setup_venv.sh does), print the java options
    spark-submit --driver-java-options "$(yololake jvm-archive)" ...   # the same for spark-submit runs

The archive (~190 MB) lives in the virtual environment (var/yololake/), else in ~/.cache/yololake/;
`YOLOLAKE_JVM_ARCHIVE=DIR` keeps it in DIR, `YOLOLAKE_JVM_ARCHIVE=off` turns it off.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("yololake.jvm")

ENV = "YOLOLAKE_JVM_ARCHIVE"
DUMP_ENV = "YOLOLAKE_JVM_ARCHIVE_DUMP"  # set by `create` for its warm-up process only
# Not C1 only (-XX:TieredStopAtLevel=1): 2.4 s faster at 100k frames, but 1M frames took 205 s instead of 148 s
# (docs/benchmarks.md).


def _java() -> str | None:
    """The java Spark's launcher runs: $JAVA_HOME/bin/java, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(found) if found and os.path.exists(found) else None


def _jars_dir() -> Path:
    import pyspark

    return Path(os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)) / "jars"


def archive_path() -> Path | None:
    """Where the archive of this JVM and these Spark jars lives (it may not exist yet); None when turned off or
    there is no java."""
    setting = os.environ.get(ENV, "")
    java = _java()
    if setting.lower() == "off" or not java:
        return None
    jars = _jars_dir()
    key = hashlib.sha256()
    for path in [Path(java), Path(java).parent.parent / "lib" / "modules", jars]:
        stat = path.stat() if path.exists() else None
        key.update(f"{path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    for jar in sorted(os.listdir(jars)) if jars.is_dir() else []:
        key.update(f"{jar}|{(jars / jar).stat().st_size}\n".encode())
    return _archive_dir(setting) / f"spark-classes-{key.hexdigest()[:16]}.jsa"


def _archive_dir(setting: str) -> Path:
    """YOLOLAKE_JVM_ARCHIVE if set; in a virtual environment its var/yololake (removed with it: the archive
    belongs to that environment's Spark); else the user's cache."""
    if setting:
        return Path(setting)
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "var" / "yololake"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yololake"


def java_options() -> list[str]:
    """The options for a local Spark driver JVM: the class archive when one was made (in the warm-up process:
    where its JVM writes one)."""
    if os.environ.get(DUMP_ENV):
        return [f"-XX:ArchiveClassesAtExit={os.environ[DUMP_ENV]}"]
    path = archive_path()
    return [f"-XX:SharedArchiveFile={path}"] if path and path.is_file() else []


def with_java_options(settings: dict[str, str]) -> dict[str, str]:
    """`settings` with our options added before the user's own spark.driver.extraJavaOptions (theirs win
    where they repeat one). An extra driver class path changes the class path the archive was made for."""
    key = "spark.driver.extraJavaOptions"
    options = java_options() if "spark.driver.extraClassPath" not in settings else []
    merged = " ".join([*options, settings.get(key, "")]).strip()
    return {**settings, key: merged} if merged else dict(settings)


def _maps(java: str, archive: Path) -> bool:
    """A JVM maps the archive, relocates every pointer in it and exits 0: a truncated one dies there (SIGBUS).
    (Run with no class path, so it then declines the archive as not its own: that check is Spark's JVM's.)"""
    with tempfile.TemporaryDirectory(prefix="yololake-jvm-check-") as scratch:  # where a crash writes hs_err
        done = subprocess.run([java, f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", "-Xlog:cds=info",
                               "-version"], capture_output=True, text=True, timeout=120, cwd=scratch)
    return done.returncode == 0 and "Mapped dynamic region #1" in done.stdout + done.stderr


def create(path: Path) -> Path:
    """Run a small local build with the archive written at its JVM's exit, check it, and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    with tempfile.TemporaryDirectory(prefix="yololake-jvm-") as work:
        code = ("import sys; from yololake.jvm_archive import _warm_up; _warm_up(sys.argv[1])")
        env = {**os.environ, DUMP_ENV: str(part), "PYSPARK_PYTHON": sys.executable}
        done = subprocess.run([sys.executable, "-c", code, work], env=env, capture_output=True, text=True,
                              timeout=900)
        try:
            if done.returncode != 0 or not part.is_file() or not _maps(_java() or "java", part):
                raise RuntimeError(f"the warm-up run exited {done.returncode}: {done.stderr.strip()[-1500:]}")
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
    return path


def _warm_up(work: str) -> None:
    """The warm-up build (in its own process, whose JVM writes the archive as it exits): the sample lake through
    the demo config, so the archive holds what a build loads."""
    from yololake.build.main import main as build
    from yololake.samples.lake import main as sample_lake

    conf = Path(__file__).resolve().parents[2] / "conf" / "demo.yaml"
    lake, out = os.path.join(work, "lake"), os.path.join(work, "out")
    if sample_lake(["--out", lake]) != 0:
        raise SystemExit("warm-up: the sample lake could not be generated")
    code = build(["--config", str(conf), "--master", "local[2]", "--annotations", f"{lake}/annotations",
                  "--frames", f"{lake}/frames", "--images", lake, "--out", out,
                  "--set", "report.enabled=false", "--set", "output.frames_per_shard=8"])
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if SparkContext._active_spark_context:
        SparkContext._active_spark_context.stop()
    if gateway is not None:  # the JVM writes the archive as it exits: wait for that, not just for Python
        gateway.shutdown()
        gateway.proc.stdin.close()
        jvm_exit = gateway.proc.wait(timeout=600)
        if jvm_exit != 0:
            raise SystemExit(f"warm-up: the JVM exited {jvm_exit} while writing the archive")
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    from yololake.cli import run_command
    from yololake.errors import PreflightError

    p = argparse.ArgumentParser(prog="yololake jvm-archive", description=__doc__.splitlines()[0])
    p.add_argument("--no-create", action="store_true", help="print the options only; never run the warm-up")
    p.add_argument("--retry", action="store_true", help="run the warm-up again after one failed")
    args = p.parse_args(argv)

    def body() -> int:
        path = archive_path()
        if path and not path.is_file() and not args.no_create:
            failed = path.with_name(path.name + ".failed")  # one failure is not repeated by every setup run
            if failed.is_file() and not args.retry:
                print(f"jvm-archive: the warm-up failed before ({failed}); local Spark starts without the archive "
                      "(--retry to try again)", file=sys.stderr)
            else:
                started = time.monotonic()
                print(f"jvm-archive: a warm-up build writes {path} (once per JVM and Spark install)...",
                      file=sys.stderr)
                try:
                    create(path)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failed.write_text(f"{exc}\n", encoding="utf-8")
                    raise PreflightError(f"the JVM class archive could not be made ({failed} says why); local "
                                         "Spark runs start without it, only slower; --retry to try again") from exc
                failed.unlink(missing_ok=True)
                print(f"jvm-archive: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
        print(" ".join(java_options()))
        return 0

    return run_command("jvm-archive", body)
