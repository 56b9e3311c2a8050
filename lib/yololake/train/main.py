"""`yololake train`: resolve -> stage -> YAML + label caches -> preflight -> YOLOv5 or ultralytics under torchrun.

    yololake train --data s3://lake/datasets/udacity/v1 --model yolov5s --weights '' --epochs 100 \
      --batch-size 256 --img 640 --nproc-per-node 8 --nnodes 4 --node-rank $RANK \
      --rdzv-endpoint head:29400 --stage-dir /nvme/yololake [--trainer yolov5|ultralytics] [--yolov5-dir PATH]
      [--dry-run] [-- train.py args, or ultralytics key=value]

Run it on every node (scripts/train_node.sh wraps it for schedulers). Exit code: the trainer's, or 2 for
a usage/dataset/preflight error (one line on stderr).
"""
from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from yololake.cli import run_command
from yololake.errors import StorageError, UsageError
from yololake.train import launch, preflight, prepare, safe_load, stage, ultralytics_env, yolov5_env
from yololake.train.args import TrainOptions, parse


def _say(text: str) -> None:
    print(f"yololake train: {text}", flush=True)


def dry_run(o: TrainOptions, source: stage.Source, stage_root: str) -> int:
    """Print every node's command (what each node would run after staging and preflight)."""
    folder = prepare.plan_folder(source, stage_root, prepare.should_copy(source, o.stage), o.trainer)
    yaml_path = os.path.join(folder, prepare.YAML_NAME)
    run = launch.run_dir(o.project, o.name)
    ranks = range(o.nnodes) if o.rendezvous == "static" else [o.node_rank]
    for rank in ranks:
        node = replace(o, node_rank=rank)
        label = f"node rank {rank}" if o.rendezvous == "static" else (
            f"every node ({o.nnodes})" if o.nnodes > 1 else "this node")
        print(f"# {label}: {o.world_size} process(es) in total, dataset {source.url} "
              f"(version {source.version[:12]}) read from {folder}")
        print(shlex.join(launch.command(node, yaml_path, run)))
    return 0


def check_trainer(o: TrainOptions) -> None:
    """The model and weights exist locally, and no checkpoint needs a global outside the trainer's allowlist."""
    if o.trainer == "yolov5":
        yolov5_env.model_cfg(o.model, yolov5_env.locate(o.yolov5_dir))
    else:
        ultralytics_env.model_arg(o.model)
    yolov5_env.check_weights(o.weights)
    if o.trust_weights or (o.trainer == "yolov5" and o.yolov5_dir):  # a clone's: in the trainer process only
        return
    for flag, path in (("--weights", o.weights), ("--model", o.model)):
        if why := safe_load.refusal(path, o.trainer):
            raise UsageError(f"{flag}: {why}")


def say_caches(caches: dict) -> None:
    for split, cache in caches.items():
        if "skipped" in cache:
            _say(f"label cache {split}: not prebuilt: {cache['skipped']}")
            continue
        _, nm, ne, nc, n = cache["results"]
        state = "written" if cache["written"] else "up to date"
        _say(f"label cache {split}: {n} images, {ne + nm} backgrounds, {nc} corrupt ({state}: {cache['path']})")


def run(o: TrainOptions) -> int:
    started = time.monotonic()
    check_trainer(o)
    source = stage.resolve(o.data)
    stage_root = stage.default_stage_root(o.stage_dir)
    if o.dry_run:
        return dry_run(o, source, stage_root)

    backend = preflight.check_devices(o)
    if not o.preflight_only:
        preflight.check_trainer_can_run(o, backend)
    preflight.check_disk(stage_root, o.min_free_gb)
    preflight.check_disk(os.path.abspath(o.project), o.min_free_gb)
    prepared = prepare.prepare(source, stage_root, o.stage, o.stage_workers, progress=sys.stderr.isatty(),
                               min_free_bytes=int(o.min_free_gb * 1e9), trainer=o.trainer)
    where = "staged to" if prepared.staged else "used in place from"
    _say(f"dataset {source.url} version {source.version_id or source.version[:12]} {where} {prepared.root}")
    say_caches(prepared.caches)
    env = yolov5_env.offline_env(stage_root, trust=o.trust_weights)
    if o.distributed:
        preflight.distributed_check(o, yolov5_env.python(), backend, prepared.fingerprint, prepared.root, env)
    _say(f"preflight passed ({time.monotonic() - started:.1f}s)")
    if o.preflight_only:
        return 0

    folder = launch.run_dir(o.project, o.name)
    cmd = launch.command(o, prepared.yaml_path, folder, cpu=backend == "gloo")
    launch.save_provenance(folder, o, cmd, prepared)
    _say(f"run folder {folder}\n  {shlex.join(cmd)}")
    trainer_started = time.monotonic()
    code = launch.run_trainer(cmd, env)
    metrics = launch.final_metrics(folder)
    launch.record_end(folder, code, time.monotonic() - trainer_started, metrics)
    if metrics:
        _say(launch.format_metrics(metrics, o.trainer))
    elif o.distributed:
        _say("no results.csv here: the trainer writes it on the node that runs global rank 0")
    if code == 0 and o.upload_to and metrics:  # only the node holding the results uploads
        _say(f"run folder uploaded to {launch.upload(folder, o.upload_to)}")
    _say(f"trainer exited with {code}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        options = parse(argv)
        try:
            return run(options)
        except OSError as exc:  # storage: credentials, permissions, a full disk, an unreachable endpoint
            raise StorageError(f"{type(exc).__name__}: {exc}") from None

    return run_command("yololake train", body)
