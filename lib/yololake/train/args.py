"""`yololake train` options: declared once, as a frozen dataclass whose fields carry their flag's help and
group; the argparse parser is derived from it, so a default or a help text lives in one place. Every
check fails with one line that names the flag, the value, the rule and the fix.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field

from yololake.errors import UsageError

STAGE_MODES = ("auto", "always", "never")
TRAINERS = ("yolov5", "ultralytics")
_GROUPS = ("", "distributed (torchrun)", "staging", "run")


def option(default, help: str = "", group: str = "", aliases: tuple[str, ...] = (), choices=None,  # noqa: A002
           env: str = "", flag: bool = True):
    """A TrainOptions field and its command-line flag (--field-name): help text, group, aliases, choices,
    an environment variable that supplies the default, or `flag=False` for a field with no flag."""
    meta = {"help": help, "group": group, "aliases": aliases, "choices": choices, "env": env, "flag": flag}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainOptions:
    data: str = option(dataclasses.MISSING, "dataset folder or URL written by build-dataset: a local path or any "
                       "fsspec URL (s3://, gs://, file://)")
    trainer: str = option("yolov5", "yolov5 (the YOLOv5 repo's train.py) or ultralytics (YOLOv8 / YOLO11) (yolov5)",
                          choices=TRAINERS)
    model: str = option("yolov5s", "yolov5: yolov5n/s/m/l/x or a model YAML; ultralytics: a model YAML it ships "
                        "(yolo11n.yaml, yolov8s.yaml), a YAML path, or a local .pt (yolov5s)")
    weights: str = option("", "initial weights file (.pt, local: never downloaded); '' (default) trains from scratch")
    trust_weights: bool = option(False, "load checkpoints with full unpickling (code can run) instead of "
                                 "weights_only=True and the trainer's class allowlist: only for files you trust")
    epochs: int = option(100)
    batch_size: int = option(16, "total batch size over all processes, a multiple of the world size (16)")
    img: int = option(640, "image size in pixels (640)", aliases=("--imgsz",))
    device: str = option("", "YOLOv5 --device: '' (all visible GPUs, else CPU), cpu, or 0,1,... ('')")
    nproc_per_node: int = option(1, "processes (GPUs) per node (1)", "distributed (torchrun)")
    nnodes: int = option(1, "number of nodes (1)", "distributed (torchrun)")
    node_rank: int = option(0, "this node's rank, with --master-addr (0)", "distributed (torchrun)")
    rdzv_endpoint: str = option("", "HOST:PORT of the c10d rendezvous (multi-node without fixed node ranks)",
                                "distributed (torchrun)")
    rdzv_id: str = option("yololake", "rendezvous id, the same on every node (yololake)", "distributed (torchrun)")
    master_addr: str = option("", "rank-0 node address (multi-node without rendezvous)", "distributed (torchrun)")
    master_port: int = option(29500, "rank-0 node port (29500)", "distributed (torchrun)")
    preflight_timeout: int = option(60, "seconds the distributed preflight check waits for every node (60)",
                                    "distributed (torchrun)")
    stage_dir: str = option("", "fast local folder for staged datasets and the prepared YAML, lists and caches "
                            "($YOLOLAKE_STAGE_DIR, else ~/.cache/yololake/stage)", "staging", env="YOLOLAKE_STAGE_DIR")
    stage: str = option("auto", "auto: copy only non-local datasets; always: copy local ones too (e.g. NFS to "
                        "NVMe); never (auto)", "staging", choices=STAGE_MODES)
    stage_workers: int = option(16, "parallel downloads (16)", "staging")
    min_free_gb: float = option(1.0, "free disk required besides the dataset (1)", "staging")
    yolov5_dir: str = option("", "a clone of ultralytics/yolov5 to run instead of the pip package", "run")
    project: str = option("runs/train", "parent of the run folder (runs/train)", "run")
    name: str = option("exp", "run folder name; exp2, exp3... if taken (exp)", "run")
    upload_to: str = option("", "URL to copy the run folder to after success, by the node holding results.csv "
                            "(optional)", "run")
    dry_run: bool = option(False, "print the command of every node and exit", "run")
    preflight_only: bool = option(False, "stage, prepare and run the preflight checks (including the distributed "
                                  "one), then exit", "run")
    extra: tuple[str, ...] = option((), "arguments after --, passed to the trainer unchanged (YOLOv5: train.py "
                                    "flags; ultralytics: key=value)", flag=False)

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def rendezvous(self) -> str:
        """standalone | c10d | static (master address/port) | single (one process, no torchrun)."""
        if not self.distributed:
            return "single"
        if self.rdzv_endpoint:
            return "c10d"
        if self.master_addr:
            return "static"
        return "standalone"


def build_parser(prog: str = "yololake train") -> argparse.ArgumentParser:
    """The parser, derived from TrainOptions' fields (flag --field-name, type from the annotation)."""
    p = argparse.ArgumentParser(prog=prog, description="Stage a yololake dataset and train YOLOv5 or ultralytics on "
                                "it (torchrun for several processes). Arguments after -- go to the trainer "
                                "(YOLOv5's train.py flags, or ultralytics key=value pairs).")
    groups = {name: p.add_argument_group(name) if name else p for name in _GROUPS}
    hints = typing.get_type_hints(TrainOptions)
    for f in dataclasses.fields(TrainOptions):
        meta = f.metadata
        if not meta["flag"]:
            continue
        flags = (f"--{f.name.replace('_', '-')}", *meta["aliases"])
        kwargs = {"dest": f.name, "help": meta["help"] or None}
        if f.default is dataclasses.MISSING:
            kwargs["required"] = True
        elif hints[f.name] is bool:
            kwargs["action"] = "store_true"
        else:
            default = os.environ.get(meta["env"], f.default) if meta["env"] else f.default
            kwargs.update(type=hints[f.name], default=default, choices=meta["choices"])
        groups[meta["group"]].add_argument(*flags, **kwargs)
    return p


def split_extra(argv: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], tuple(argv[i + 1:])
    return argv, ()


def _host_port(flag: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{flag} {value!r}: expected HOST:PORT, e.g. head-node:29400")


def check(o: TrainOptions) -> TrainOptions:
    """Rules that need no machine: counts, ranks, the rendezvous form."""
    for flag, value, low in (("--epochs", o.epochs, 1), ("--batch-size", o.batch_size, 1), ("--img", o.img, 32),
                             ("--nproc-per-node", o.nproc_per_node, 1), ("--nnodes", o.nnodes, 1),
                             ("--stage-workers", o.stage_workers, 1), ("--preflight-timeout", o.preflight_timeout, 1)):
        if value < low:
            raise UsageError(f"{flag} {value}: must be at least {low}")
    if o.batch_size % o.world_size:
        fix = (o.batch_size // o.world_size + 1) * o.world_size
        raise UsageError(f"--batch-size {o.batch_size} must be a multiple of the world size {o.world_size} "
                         f"(--nnodes {o.nnodes} x --nproc-per-node {o.nproc_per_node}); use e.g. {fix}")
    if not 0 <= o.node_rank < o.nnodes:
        raise UsageError(f"--node-rank {o.node_rank}: must be in 0..{o.nnodes - 1} for --nnodes {o.nnodes}")
    if o.rdzv_endpoint and o.master_addr:
        raise UsageError("--rdzv-endpoint and --master-addr are two ways to meet; pass only one")
    if o.rdzv_endpoint:
        _host_port("--rdzv-endpoint", o.rdzv_endpoint)
    if o.nnodes > 1 and not (o.rdzv_endpoint or o.master_addr):
        raise UsageError(f"--nnodes {o.nnodes} needs --rdzv-endpoint HOST:PORT (c10d) or --master-addr HOST "
                         "(with --node-rank) so the nodes can find each other")
    if not 0 < o.master_port < 65535:  # the preflight check uses master port + 1
        raise UsageError(f"--master-port {o.master_port}: must be in 1..65534")
    if o.trainer == "ultralytics" and (bad := [x for x in o.extra if "=" not in x.strip("=")]):
        raise UsageError(f"-- {bad[0]}: ultralytics arguments after -- are key=value, e.g. -- lr0=0.01 mosaic=0.5")
    if o.trainer == "yolov5" and o.distributed and any(x in o.extra for x in ("--evolve", "--image-weights")):
        raise UsageError("--evolve and --image-weights do not work with several processes in YOLOv5; "
                         "use --nproc-per-node 1 --nnodes 1")
    return o


def parse(argv: Sequence[str]) -> TrainOptions:
    """argv (without the subcommand) -> checked options; argparse exits 2 on syntax errors."""
    own, extra = split_extra(argv)
    ns = build_parser().parse_args(own)
    fields = {f.name for f in dataclasses.fields(TrainOptions)}
    return check(TrainOptions(**{k: v for k, v in vars(ns).items() if k in fields}, extra=extra))
