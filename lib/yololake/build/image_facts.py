"""Image facts read where each image lives (local path or fsspec URL), inside Spark tasks; never a write.

Per frame: the format, the stored width and height, the EXIF orientation and the byte size, and a reason
code when YOLOv5 could not train on the image. The checks are those of YOLOv5's verify_image_label: Pillow
can open it, the format is one YOLOv5 trains on, both sides are at least 10 px, and a JPEG ends with its
end-of-image marker (YOLOv5 rewrites such a file in place; we quarantine it). `decode` adds a full decode.

A baseline or progressive JPEG's header is read by a marker walk over its first bytes (`jpeg_header`:
the frame size, and the orientation from EXIF IFD0): Pillow's open reads a JPEG byte by byte and costs
several times more. Every other format, and any JPEG the walk does not fully understand, is opened with Pillow.
Local files are read by one thread, `READ_AHEAD` files opened early with posix_fadvise(WILLNEED) so that
the disk reads overlap; remote ones in one GET each, `REMOTE_THREADS` at a time per task.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from yololake.config import StorageConfig
from yololake.dataset import reasons as R
from yololake.dataset.layout import YOLO_IMAGE_FORMATS
from yololake.storage import filesystem, local_path

FACT_FIELDS = (StructField("image_format", StringType()), StructField("stored_width", IntegerType()),
               StructField("stored_height", IntegerType()), StructField("orientation", IntegerType()),
               StructField("image_bytes", LongType()), StructField("image_reason", StringType()))
FIRST_READ = 1 << 12   # a JPEG's header without a large EXIF block fits
HEAD_BYTES = 1 << 16   # with one too, nearly always (one EXIF segment is at most 64 KiB); read ahead locally
MIN_SIDE = 10          # YOLOv5: "image size <10 pixels" is corrupt
_INTS = ("stored_width", "stored_height", "orientation", "image_bytes")
READ_AHEAD = 64        # local images opened (and their bytes asked of the kernel) before the one parsed
REMOTE_THREADS = 16    # concurrent GETs per Spark task
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)  # Linux; elsewhere the reads just do not overlap
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SEGMENTS = frozenset(range(0xC0, 0xD0)) | {0xDB, 0xDD} | frozenset(range(0xE0, 0xF0)) | {0xFE}


class Facts(NamedTuple):
    image_format: str | None = None
    stored_width: int | None = None
    stored_height: int | None = None
    orientation: int | None = None
    image_bytes: int | None = None
    image_reason: str | None = None


class NeedMore(Exception):
    """The header runs past the bytes read so far."""


def _exif_orientation(tiff: bytes) -> int | None:
    """Tag 0x0112 of IFD0 (1 when absent); None when the block is not plain enough to trust."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(tiff[:4])
    if order is None or len(tiff) < 8:
        return None
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    if ifd + 2 + 12 * count > len(tiff):
        return None
    for n in range(count):
        tag, kind, values = struct.unpack_from(order + "HHI", tiff, ifd + 2 + 12 * n)
        if tag == 0x0112:
            return struct.unpack_from(order + "H", tiff, ifd + 10 + 12 * n)[0] if (kind, values) == (3, 1) else None
    return 1


def jpeg_header(head: bytes) -> tuple[int, int, int] | None:
    """(width, height, orientation) from a JPEG's markers up to its first scan; None: ask Pillow instead.

    Raises NeedMore when the markers run past `head`. Only a clean 8-bit JPEG with 1, 3 or 4 components
    passes; anything else (MPO, junk between markers, a second frame header, odd EXIF) goes to Pillow.
    """
    if head[:3] != b"\xff\xd8\xff":
        return None
    i, size, orientation = 2, None, 1
    while True:
        if i + 4 > len(head):
            raise NeedMore
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:
            return (*size, orientation) if size else None
        if marker not in _SEGMENTS:
            return None
        (length,) = struct.unpack_from(">H", head, i + 2)
        end = i + 2 + length
        if length < 2:
            return None
        if end > len(head):
            raise NeedMore
        segment = head[i + 4:end]
        if marker in _SOF:
            if size or length < 8 or segment[0] != 8 or segment[5] not in (1, 3, 4):
                return None
            height, width = struct.unpack_from(">HH", segment, 1)
            size = (width, height)
        elif marker == 0xE1 and segment[:6] == b"Exif\x00\x00" and orientation == 1:
            orientation = _exif_orientation(segment[6:])
            if orientation is None:
                return None
        elif marker == 0xE2 and segment[:4] == b"MPF\x00":
            return None  # a multi-picture file: Pillow calls it MPO
        i = end


def _pillow(fp, decode: bool) -> tuple[str, int, int, int]:
    """format, width, height, orientation as Pillow (YOLOv5's reader) sees them; raises on a bad image."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning, malformed MPO: the error path decides
        with Image.open(fp) as im:
            fmt, (width, height), orientation = (im.format or "").lower(), im.size, 1
            if "exif" in im.info:  # found while opening (JPEG, WebP, PNG before its pixels): no decode needed
                try:
                    orientation = int(im.getexif().get(0x0112, 1))
                except Exception:  # noqa: BLE001, S110 - YOLOv5's exif_size ignores an unreadable EXIF block too
                    pass
            if decode:
                if fmt in ("jpeg", "mpo"):
                    im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))  # the whole scan, 1/8 IDCT
                im.load()
            else:
                im.verify()
    return fmt, width, height, orientation


def _walk(read, size: int) -> tuple[int, int, int] | None:
    """jpeg_header over the first 4 KiB, else 64 KiB, else every byte (a large EXIF thumbnail or ICC profile)."""
    for n in (FIRST_READ, HEAD_BYTES, size):
        try:
            return jpeg_header(read(n))
        except NeedMore:
            if n >= size:
                return None
    return None


def facts_from(read, size: int, tail: bytes, decode: bool) -> Facts:
    """The facts of one image of `size` bytes ending in `tail`; `read(n)` gives its first n bytes."""
    try:
        header = None if decode else _walk(read, size)
        if header:
            fmt, (width, height, orientation) = "jpeg", header
        else:
            fmt, width, height, orientation = _pillow(io.BytesIO(read(size)), decode)
    except Exception:  # noqa: BLE001 - whatever Pillow raises on a damaged file, YOLOv5 counts it as corrupt
        return Facts(image_bytes=size, image_reason=R.CORRUPT_IMAGE)
    reason = None
    if fmt not in YOLO_IMAGE_FORMATS:
        reason = R.UNSUPPORTED_IMAGE_FORMAT
    elif min(width, height) < MIN_SIDE:
        reason = R.IMAGE_TOO_SMALL
    elif fmt == "jpeg" and tail != b"\xff\xd9":
        reason = R.CORRUPT_IMAGE  # truncated, or trailing bytes YOLOv5 would "restore" by rewriting the file
    return Facts(fmt, width, height, orientation, size, reason)


def _open(path: str) -> tuple[int, int] | Facts:
    """(fd, size), with the kernel asked to read the first HEAD_BYTES and the last 2 bytes ahead; or the
    Facts of a file that cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return Facts(image_reason=R.IMAGE_MISSING)
    except OSError:
        return Facts(image_reason=R.CORRUPT_IMAGE)  # no permission, a name too long: unreadable
    try:
        size = os.fstat(fd).st_size
        if _WILLNEED is not None:
            os.posix_fadvise(fd, 0, HEAD_BYTES, _WILLNEED)
            if size > HEAD_BYTES:
                os.posix_fadvise(fd, size - 2, 2, _WILLNEED)
    except OSError:
        os.close(fd)
        return Facts(image_reason=R.CORRUPT_IMAGE)
    return fd, size


def _read(opened: tuple[int, int] | Facts, decode: bool) -> Facts:
    """The facts of an `_open`ed file, which is then closed."""
    if isinstance(opened, Facts):
        return opened
    fd, size = opened
    try:
        tail = os.pread(fd, 2, size - 2) if size >= 2 else b""
        return facts_from(lambda n: os.pread(fd, n, 0), size, tail, decode)
    except OSError:  # a folder, an I/O error
        return Facts(image_reason=R.CORRUPT_IMAGE)
    finally:
        os.close(fd)


def local_facts(paths: list[str], decode: bool, ahead: int = READ_AHEAD) -> list[Facts]:
    """Local images in order, each opened `ahead` images early so that the disk reads overlap (kernel
    read-ahead, posix_fadvise WILLNEED) while one thread parses: no GIL hand-offs between threads."""
    pending: deque = deque()
    out = []
    try:
        for path in paths:
            pending.append(_open(path))
            if len(pending) > ahead:
                out.append(_read(pending.popleft(), decode))
        while pending:
            out.append(_read(pending.popleft(), decode))
    finally:
        for opened in pending:  # only after an exception
            if not isinstance(opened, Facts):
                os.close(opened[0])
    return out


def _remote_facts(uri: str, storage: StorageConfig, decode: bool) -> Facts:
    fs, path = filesystem(uri, storage)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return Facts(image_reason=R.IMAGE_MISSING)
    except PermissionError:
        return Facts(image_reason=R.CORRUPT_IMAGE)  # unreadable; other storage errors fail the task
    return facts_from(lambda n: data[:n], len(data), data[-2:], decode)


def image_facts(uri: str, storage: StorageConfig, decode: bool = False) -> Facts:
    """One image's facts: a local file by its first bytes (4 KiB, more when the header needs) and last 2, a
    remote one in one GET."""
    local = local_path(uri)
    return _read(_open(local), decode) if local is not None else _remote_facts(uri, storage, decode)


def check_images(uris: list, storage: StorageConfig, decode: bool, threads: int = REMOTE_THREADS) -> list[Facts]:
    """Facts for each uri (None: not checked): local files in one thread with read-ahead, remote ones by
    `threads` threads (each waits on its GET)."""
    facts = [Facts()] * len(uris)
    local = [(i, local_path(u)) for i, u in enumerate(uris) if isinstance(u, str) and local_path(u) is not None]
    for (i, _), f in zip(local, local_facts([p for _, p in local], decode)):
        facts[i] = f
    remote = [(i, u) for i, u in enumerate(uris) if isinstance(u, str) and local_path(u) is None]
    if remote:
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for (i, _), f in zip(remote, pool.map(lambda u: _remote_facts(u, storage, decode), (u for _, u in remote))):
                facts[i] = f
    return facts


def add_image_facts(frames: DataFrame, storage: StorageConfig, decode: bool = False, threads: int = REMOTE_THREADS,
                    check_column: str = "frame_reason") -> DataFrame:
    """Add the FACT_FIELDS columns, read per partition for the frames whose `check_column` is null."""
    schema = StructType(frames.schema.fields + list(FACT_FIELDS))

    def check(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            todo = [u if pd.isna(r) else None for u, r in zip(batch["image_uri"], batch[check_column])]
            facts = pd.DataFrame(check_images(todo, storage, decode, threads), columns=Facts._fields,
                                 index=batch.index)
            for name in Facts._fields:
                batch[name] = facts[name].astype("Int64") if name in _INTS else facts[name]
            yield batch

    return frames.mapInPandas(check, schema)


def no_image_facts(frames: DataFrame) -> DataFrame:
    """The FACT_FIELDS columns, all null: no image is opened (images.check_exists false)."""
    from pyspark.sql import functions as F

    return frames.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in FACT_FIELDS])
