"""ultralytics' DetectionTrainer, sized by the torchrun world instead of the local device list.

ultralytics sizes its process group from the devices it is given (`world_size = len(device.split(","))`), so
under torchrun across nodes it calls init_process_group with the wrong world size and cannot train on more
than one node. This subclass, passed as `model.train(trainer=YololakeTrainer)` (no fork, no patch of the
package), takes RANK / LOCAL_RANK / WORLD_SIZE from torchrun:
- the process group spans every process of every node, with the global rank;
- the total --batch-size is divided by the global world size (ultralytics' own `batch // world_size`);
- rank-0-only work (plots, saving, final validation) stays where ultralytics puts it: `RANK in {-1, 0}`,
  and torchrun's RANK is the global rank;
- on CPU (gloo), where ultralytics' DDP wrap passes `device_ids=[None]` that DistributedDataParallel refuses
  for a CPU module, the model is wrapped here without device ids;
- the final validation of best.pt runs on global rank 0 alone, after the process group is closed:
  ultralytics runs it on every rank that finds best.pt on its disk, with barriers inside, which hangs or
  fails across nodes (only global rank 0's node has best.pt); on CPU it is skipped (ultralytics' validator
  puts a DDP rank on CUDA) and the last epoch's validation stands;
- offline, the AMP check (which downloads yolo26n.pt) is skipped when that file is absent: AMP stays on.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import LOGGER, RANK, WEIGHTS_DIR
from ultralytics.utils.torch_utils import strip_optimizer


def torchrun_world() -> tuple[int, int, int]:
    """(global rank, local rank, world size) from torchrun's environment; (-1, -1, 1) outside torchrun."""
    if "LOCAL_RANK" not in os.environ:
        return -1, -1, 1
    return int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])


class YololakeTrainer(DetectionTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rank, local_rank, world = torchrun_world()
        if world > 1:
            self.world_size = world  # every process of every node, not this node's devices
            self.ddp = False  # torchrun started us: never spawn
        print(f"yololake trainer: global rank {rank}, local rank {local_rank}, world size {self.world_size}",
              flush=True)  # print: ultralytics silences its logger on ranks other than 0

    def _setup_ddp(self):
        """The process group over the global world (gloo on CPU); ultralytics' own on accelerators."""
        if self.device.type != "cpu":
            return super()._setup_ddp()
        dist.init_process_group("gloo", timeout=timedelta(seconds=10800), rank=RANK, world_size=self.world_size)

    def _setup_train(self):
        cpu_ddp = self.world_size > 1 and self.device.type == "cpu"
        skip_amp_check = (self.device.type == "cuda" and self.args.amp is True
                          and not (WEIGHTS_DIR / "yolo26n.pt").is_file())
        if skip_amp_check:
            self.args.amp = False  # no check (it downloads its weights); AMP is switched back on below
        world = self.world_size
        self._pipeline_world = world
        if cpu_ddp:
            self.world_size = 1  # ultralytics' DDP wrap would pass device_ids=[None]: wrap below instead
            self.args.amp = False  # every rank alike (rank 0's check would say False, the others would not sync)
        try:
            super()._setup_train()
        finally:
            self.world_size = world
        if cpu_ddp:
            self.model = torch.nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=True)
        if skip_amp_check:
            LOGGER.info("AMP: check skipped (offline, no yolo26n.pt); training with AMP")
            self.args.amp = self.amp = True
            self.scaler = torch.amp.GradScaler("cuda", enabled=True)

    def _build_train_pipeline(self):
        """Loaders sized by the global world size, also while _setup_train runs with world_size 1 on CPU."""
        world, self.world_size = self.world_size, getattr(self, "_pipeline_world", self.world_size)
        try:
            super()._build_train_pipeline()
        finally:
            self.world_size = world
        loader = self.train_loader
        print(f"yololake trainer: rank {RANK} trains on {len(loader.sampler)} of {len(loader.dataset)} images, "
              f"batch {loader.batch_size} per process", flush=True)

    def final_eval(self):
        if self.world_size > 1 and dist.is_initialized():
            dist.barrier()  # every rank has finished training
            dist.destroy_process_group()
            if RANK != 0:
                return
            if self.device.type == "cpu":  # ultralytics' validator puts a DDP rank on CUDA: strip only
                ckpt = strip_optimizer(self.last) if self.last.exists() else {}
                if self.best.exists():
                    strip_optimizer(self.best, updates={"train_results": ckpt.get("train_results")})
                LOGGER.info("yololake trainer: final validation of best.pt skipped on CPU DDP (ultralytics' "
                            "validator needs CUDA there); the last epoch's validation is in results.csv")
                return
        super().final_eval()
