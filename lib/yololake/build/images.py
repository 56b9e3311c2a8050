"""Source images: reading them and placing them in the output (their checks: `build.image_facts`)."""
from __future__ import annotations

import hashlib
import os

from yololake.config import StorageConfig
from yololake.storage import atomic_file, filesystem, local_path


def read_image(uri: str, storage: StorageConfig) -> bytes:
    local = local_path(uri)
    if local is not None:
        with open(local, "rb") as f:
            return f.read()
    fs, path = filesystem(uri, storage)
    return fs.cat_file(path)


def place_image(source_uri: str, target: str, mode: str, storage: StorageConfig) -> str | None:
    """Put the source image at local path `target`: a symlink to it (mode link) or a byte copy (mode copy).

    Returns the sha256 of the copied bytes (None for a link): staging checks the copies against it.
    """
    local = local_path(source_uri)
    if mode == "link":
        if local is None:
            raise ValueError(f"images.mode link needs images on a local or mounted path, got {source_uri}; "
                             "set images.mode: copy")
        with atomic_file(target) as tmp:
            os.symlink(os.path.abspath(local), tmp)
        return None
    if local is None:
        data = read_image(source_uri, storage)
        with open(target, "wb") as f:
            f.write(data)
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(local, "rb") as src, open(target, "wb") as out:
        while block := src.read(1 << 20):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()
