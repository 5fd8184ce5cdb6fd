"""Checks on untrusted files, made before anything is read into memory.

Zip archives: only the members a ``.keras`` file has, no duplicates, each
member's declared size under its cap and (past 1 MiB) at most
``MAX_EXPANSION`` times its compressed size, none encrypted or compressed by a
method zipfile cannot read. HDF5 files: only groups and datasets, no external
or soft links, no external or virtual datasets, no dataset declaring far more
bytes than the file holds, no oversized attributes. All arithmetic in Python
ints.
"""

from __future__ import annotations

import contextlib
import json
import math
import zipfile
from collections import Counter
from collections.abc import Iterator
from typing import Any

MiB = 1 << 20
MAX_EXPANSION = 100
"""A zip member past 1 MiB may expand at most this much (Keras stores members uncompressed)."""
MEMBER_LIMITS = {
    "metadata.json": MiB,
    "config.json": 16 * MiB,  # parsed, JSON can take 25x its bytes: about 400 MiB at most
    "model.weights.h5": 16 << 30,
}
"""The members a ``.keras`` archive may hold, with the most bytes each may declare."""
MAX_DATASET_EXPANSION = 4
"""A dataset may declare at most this many times the bytes of its file (plus 1 MiB)."""
MAX_ATTRIBUTE_ELEMENTS = 1 << 16
MAX_NAMES_SHOWN = 10
"""An error about an archive's members names at most this many of them."""
_ENCRYPTED = 0x1
"""The general purpose flag bit of an encrypted zip member."""
_READABLE_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                          zipfile.ZIP_LZMA)
MAX_H5_OBJECTS = 1 << 16


def require_h5py() -> Any:
    """Imports h5py, or raises an ImportError that names the pip command."""
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            "Reading and writing Keras files needs h5py: `pip install h5py` "
            "(or `pip install convt[h5]`)."
        ) from error
    return h5py


def check_archive(archive: zipfile.ZipFile) -> None:
    """Refuses unexpected, duplicated, missing or oversized members of a ``.keras`` file.

    Raises:
        ValueError: naming the member and what is wrong with it.
    """
    infos = archive.infolist()
    counts = Counter(info.filename for info in infos)
    unexpected = sorted(
        name for name, count in counts.items() if name not in MEMBER_LIMITS or count > 1
    )
    if unexpected:
        more = len(unexpected) - MAX_NAMES_SHOWN
        raise ValueError(
            f"Expected a .keras archive to hold only {sorted(MEMBER_LIMITS)}, each once. "
            f"Received: unexpected or repeated members {unexpected[:MAX_NAMES_SHOWN]}"
            + (f" and {more} more" if more > 0 else "")
        )
    missing = [name for name in ("config.json", "model.weights.h5") if name not in counts]
    if missing:
        raise ValueError(
            f"Expected a .keras archive to hold config.json and model.weights.h5. "
            f"Received: members {list(counts)}"
        )
    for info in infos:
        _check_member_size(info)
        _check_member_encoding(info)


def _check_member_size(info: zipfile.ZipInfo) -> None:
    limit = MEMBER_LIMITS[info.filename]
    sizes = f"Received: file_size={info.file_size}, compress_size={info.compress_size}"
    if info.file_size > limit:
        raise ValueError(
            f"Refusing archive member '{info.filename}': expected at most {limit} bytes. {sizes}"
        )
    if info.file_size > MiB and info.file_size > MAX_EXPANSION * info.compress_size:
        raise ValueError(
            f"Refusing archive member '{info.filename}': it would expand more than "
            f"{MAX_EXPANSION} times, as a decompression bomb does. {sizes}"
        )


def _check_member_encoding(info: zipfile.ZipInfo) -> None:
    """Refuses an encrypted member, or one compressed by a method zipfile cannot read."""
    if info.flag_bits & _ENCRYPTED or info.compress_type not in _READABLE_COMPRESSIONS:
        raise ValueError(
            f"Refusing archive member '{info.filename}': expected it stored or compressed "
            f"by deflate, bzip2 or lzma, without encryption. Received: "
            f"compress_type={info.compress_type}, encrypted={bool(info.flag_bits & _ENCRYPTED)}"
        )


_MALFORMED_FILE_ERRORS = (TypeError, KeyError, OSError, RuntimeError, NotImplementedError,
                          EOFError, zipfile.BadZipFile)


@contextlib.contextmanager
def malformed_as_value_error(what: str) -> Iterator[None]:
    """Reports what a malformed file makes its readers raise (h5py's TypeError, KeyError,
    OSError or RuntimeError, zipfile's BadZipFile or NotImplementedError, a truncated
    stream's EOFError) as a ValueError naming ``what``, the error every loader documents;
    ValueErrors pass unchanged."""
    try:
        yield
    except _MALFORMED_FILE_ERRORS as error:
        raise ValueError(
            f"Expected {what} to be well formed. Received: {type(error).__name__}: {error}"
        ) from error


def open_archive(path: str) -> zipfile.ZipFile:
    """``zipfile.ZipFile(path)``; a file that is not a zip archive is a ValueError."""
    try:
        return zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, NotImplementedError) as error:  # e.g. "zip file version 13.8"
        raise ValueError(
            f"File format not supported: expected a .keras file (a zip archive). "
            f"Received: filepath={path} ({error})"
        ) from None


def open_h5(path: str) -> Any:
    """``h5py.File(path, "r")``; a file that is not HDF5 is a ValueError.

    The operating system's own errors (a missing file, a directory, no
    permission) pass unchanged, as ``open`` raises them.
    """
    h5py = require_h5py()
    try:
        return h5py.File(path, "r")
    except OSError as error:
        if error.errno is not None:
            raise
        raise ValueError(
            f"File format not supported: expected an HDF5 weights file. "
            f"Received: filepath={path} ({error})"
        ) from None


def member_bytes(archive: zipfile.ZipFile, name: str, archive_bytes: int) -> int:
    """The bytes member ``name`` really holds, which a forged header cannot inflate.

    A declared size within the archive's own length is taken as is (what a
    stored member, as Keras writes, declares); a larger one is counted by
    decompressing the member once, in chunks, up to one byte past the claim.
    """
    declared = archive.getinfo(name).file_size
    if declared <= archive_bytes:
        return declared
    counted = 0
    with malformed_as_value_error(f"archive member '{name}'"), archive.open(name) as member:
        while counted <= declared and (chunk := member.read(MiB)):
            counted += len(chunk)
    return counted


def read_json_member(archive: zipfile.ZipFile, name: str) -> Any:
    """Parses one JSON member (its size already checked by :func:`check_archive`).

    Raises:
        ValueError: for a member zipfile cannot read, or invalid or absurdly nested JSON.
    """
    with malformed_as_value_error(f"archive member '{name}'"):  # a bad CRC or header
        data = archive.read(name)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(
            f"Expected archive member '{name}' to be valid JSON. Received: {error}"
        ) from None


def check_h5_tree(h5file: Any, file_bytes: int) -> None:
    """Walks every link of an HDF5 file; refuses links out of it and bloated datasets.

    Args:
        h5file: an open ``h5py.File``.
        file_bytes: the size of the file, for the dataset check.

    Raises:
        ValueError: for an external or soft link, an object other than a
            group or dataset (a named datatype), an external or virtual
            dataset, a dataset declaring more than ``MAX_DATASET_EXPANSION``
            times ``file_bytes``, or too many objects.
    """
    h5py = require_h5py()
    pending, seen = [(h5file, "")], 0
    while pending:
        group, path = pending.pop()
        for name in group:
            seen += 1
            if seen > MAX_H5_OBJECTS:
                raise ValueError(
                    f"Expected an HDF5 weights file with at most {MAX_H5_OBJECTS} objects. "
                    f"Received: more under '{path}'"
                )
            link = group.get(name, getlink=True)
            if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                raise ValueError(
                    "Refusing an HDF5 file with links: expected only groups and datasets "
                    f"stored in the file itself. Received: {type(link).__name__} at "
                    f"'{path}/{name}'"
                )
            item = group[name]
            if isinstance(item, h5py.Group):
                pending.append((item, f"{path}/{name}"))
            elif isinstance(item, h5py.Dataset):
                check_dataset(item, file_bytes)
            else:
                raise ValueError(
                    "Expected an HDF5 weights file to hold only groups and datasets. "
                    f"Received: {type(item).__name__} at '{path}/{name}'"
                )


def check_dataset(dataset: Any, file_bytes: int) -> None:
    """Refuses a dataset stored outside the file or declaring far more than it holds."""
    if dataset.external or dataset.is_virtual:
        raise ValueError(
            "Refusing an HDF5 dataset whose data lives outside the file. "
            f"Received: dataset '{dataset.name}' (external={dataset.external!r}, "
            f"virtual={dataset.is_virtual})"
        )
    shape = dataset.shape or ()
    declared = math.prod(int(d) for d in shape) * int(dataset.dtype.itemsize)
    if declared > MAX_DATASET_EXPANSION * file_bytes + MiB:
        raise ValueError(
            f"Refusing HDF5 dataset '{dataset.name}': it declares {declared} bytes but the "
            f"file holds {file_bytes}. Received: shape={tuple(shape)}, dtype={dataset.dtype}"
        )


def read_string_list_attribute(group: Any, name: str) -> list[str]:
    """A list-of-strings attribute (tf.keras splits long ones into ``name0``, ``name1``...).

    Raises:
        ValueError: for an oversized attribute.
    """
    if name in group.attrs:
        chunks = [name]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in group.attrs:
            chunks.append(f"{name}{len(chunks)}")
    values: list[str] = []
    for chunk in chunks:
        elements = math.prod(group.attrs.get_id(chunk).shape or ())
        if elements > MAX_ATTRIBUTE_ELEMENTS:
            raise ValueError(
                f"Refusing HDF5 attribute '{chunk}' of '{group.name}': expected at most "
                f"{MAX_ATTRIBUTE_ELEMENTS} entries. Received: {elements} entries"
            )
        values += [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in group.attrs[chunk]]
    return values
