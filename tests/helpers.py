"""Shared test helpers: the published content of an output, local or on S3."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from yololake.dataset.layout import DATASET_YAML, read_version, version_folder
from yololake.dataset.versions import current_folder

RUN_SPECIFIC = ("_SUCCESS", "_yololake_run.json", "stats.json", "dataset.yaml", "_heartbeat")


def published_local(out: str) -> dict[str, bytes | str]:
    """Everything a reader uses of the current version, as {relative path: bytes, or link target};
    run-specific files left out."""
    out = current_folder(out)
    tree = {}
    for folder, _, files in os.walk(out):
        rel = os.path.relpath(folder, out)
        for name in files:
            path = os.path.join(folder, name)
            if (rel == "." and name in RUN_SPECIFIC) or name.endswith(".crc"):
                continue
            tree[os.path.normpath(os.path.join(rel, name))] = (
                os.readlink(path) if os.path.islink(path) else Path(path).read_bytes())
    return tree


def s3_version(fs, root: str) -> str:
    """The current version folder of a versioned output on S3 (bucket/prefix form); any other folder as it is."""
    root = root.rstrip("/")
    fs.invalidate_cache()
    pointer = f"{root}/{DATASET_YAML}"
    version = read_version(fs.cat_file(pointer)) if fs.exists(pointer) else ""
    return f"{root}/{version_folder(version)}" if version else root


def published_s3(fs, root: str) -> dict[str, bytes]:
    root = s3_version(fs, root)
    tree = {}
    for path in fs.find(root):
        rel = path[len(root) + 1:]
        if rel not in RUN_SPECIFIC:
            tree[rel] = fs.cat_file(path)
    return tree


# Loaded by every Python process of a training run (launcher, trainer): a connect to anything but loopback is
# recorded and refused, as on an air-gapped cluster.
NO_NETWORK = '''
import os, socket
with open(os.environ["NONET_LOG"], "a") as f:
    f.write(f"guard {os.getpid()}\\n")
_connect = socket.socket.connect
def _guarded(self, address, *args):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
        with open(os.environ["NONET_LOG"], "a") as f:
            f.write(f"connect {address}\\n")
        raise OSError(101, "Network is unreachable (test)")
    return _connect(self, address, *args)
socket.socket.connect = _guarded
'''


def guarded_env(base: Path) -> dict:
    """The environment of a guarded training run under `base`: the socket guard (log: base/network.log), a stage
    dir of its own, two threads."""
    guard = base / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")]),
            "NONET_LOG": str(base / "network.log"), "YOLOLAKE_STAGE_DIR": str(base / "stage"), "OMP_NUM_THREADS": "2"}


def free_port_pair() -> int:
    """A port P with P and P + 1 free on loopback (training meets on P, the preflight check on P + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def connects(base: Path) -> list[str]:
    """The non-loopback connects the guard recorded under `base`."""
    return [line for line in (base / "network.log").read_text().splitlines() if line.startswith("connect")]


def tree_snapshot(root: str) -> dict[str, bytes | str]:
    """Every file and link below `root`: {relative path: bytes, or "-> target" for a link}."""
    tree = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            tree[rel] = f"-> {os.readlink(path)}" if os.path.islink(path) else Path(path).read_bytes()
    return tree


def files_and_mtimes(root: str, skip_suffix: str | None = None) -> dict[str, tuple[bytes | str, int]]:
    """Every file and link under root with its bytes (or link target) and mtime: what "touches nothing" compares.
    A file that vanishes between the listing and the read (a killed run's worker renaming its temporary folder)
    is left out: a caller waiting for the tree to settle sees the change on its next walk."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if skip_suffix and name.endswith(skip_suffix):
                continue
            try:
                found[path] = (os.readlink(path) if os.path.islink(path) else Path(path).read_bytes(),
                               os.lstat(path).st_mtime_ns)
            except FileNotFoundError:
                continue
    return found


def dry_run(capsys, argv: list[str], flags=()) -> tuple[int, list[list[str]], str]:
    """`yololake train ARGV --dry-run FLAGS`: the exit code, each printed command line split into words, the
    output (FLAGS last: they may end with `--` and the trainer's own arguments)."""
    import shlex

    from yololake.train import main as train_main

    code = train_main.main([*argv, "--dry-run", *flags])
    out = capsys.readouterr().out
    return code, [shlex.split(line) for line in out.splitlines() if not line.startswith("#")], out
