"""The distributed preflight worker, run under torchrun on every rank before training starts.

Checks that the process group forms and a collective works (gloo on CPU, NCCL on GPU), then gathers
every rank's staged-dataset fingerprint: a rank that would train on different data is named, with its
node, and every rank exits 1, so every node's launcher stops before spending GPU time.

Environment (set by the launcher): YOLOLAKE_DATASET_HASH, YOLOLAKE_DATASET_ROOT, YOLOLAKE_CHECK_BACKEND,
YOLOLAKE_CHECK_TIMEOUT; torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, GROUP_RANK.
"""
from __future__ import annotations

import datetime
import os
import socket
import sys

PREFIX = "yololake preflight:"


def describe(entry: dict) -> str:
    return (f"rank {entry['rank']} (node {entry['host']}, node rank {entry['node_rank']}, "
            f"local rank {entry['local_rank']})")


def mismatches(everyone: list[dict]) -> list[str]:
    """One line per rank whose dataset differs from rank 0's."""
    ref = everyone[0]
    return [f"{describe(e)} sees dataset {e['hash'][:16]} at {e['root']}, but {describe(ref)} sees "
            f"{ref['hash'][:16]} at {ref['root']}" for e in everyone[1:] if e["hash"] != ref["hash"]]


def main() -> int:
    import torch
    import torch.distributed as dist

    backend = os.environ.get("YOLOLAKE_CHECK_BACKEND", "gloo")
    timeout = datetime.timedelta(seconds=float(os.environ.get("YOLOLAKE_CHECK_TIMEOUT", "60")))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=timeout)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        ones = torch.ones(1, device=device)
        dist.all_reduce(ones)
        if int(ones.item()) != world:
            print(f"{PREFIX} all_reduce over {world} ranks returned {ones.item()}", flush=True)
            return 1
        mine = {"rank": rank, "local_rank": local_rank, "node_rank": os.environ.get("GROUP_RANK", "?"),
                "host": socket.gethostname(), "hash": os.environ.get("YOLOLAKE_DATASET_HASH", ""),
                "root": os.environ.get("YOLOLAKE_DATASET_ROOT", "")}
        everyone = [None] * world
        dist.all_gather_object(everyone, mine)
        problems = mismatches(everyone)
        if local_rank == 0:
            for line in problems:
                print(f"{PREFIX} dataset mismatch: {line}", flush=True)
            if not problems:
                print(f"{PREFIX} {backend} collective ok across {world} ranks; node rank {mine['node_rank']} "
                      f"sees the same dataset {mine['hash'][:16]} as rank 0", flush=True)
        dist.barrier()
        return 1 if problems else 0
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
