"""Bytes to text: the codec an ``--encoding`` means, decoding a file with errors that name the line, and
refusing files that are not text at all (compressed, Parquet, zip, UTF-16 without a byte-order mark)."""

from __future__ import annotations

import codecs
from pathlib import Path

from bertkit.exceptions import DataError

BINARY_STARTS = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip)"),
    (b"PAR1", "a Parquet file", "give it the .parquet extension"),
    (b"PK\x03\x04", "a zip archive (or an Excel workbook)", "extract it, or save the sheet as CSV"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it first (unzstd)"),
)


def check_not_binary(path: Path, encoding: str = "utf-8") -> None:
    """DataError when ``path``, about to be read as text, is a compressed or binary file, or UTF-16 text without
    a byte-order mark: decoding it would fail with a misleading encoding hint, or (UTF-16) read as one column."""
    try:
        if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
            return
    except LookupError:
        return  # the reader names the unknown encoding
    with path.open("rb") as handle:
        head = handle.read(4096)
    for start, what, fix in BINARY_STARTS:
        if head.startswith(start):
            raise DataError(f"{path}: is {what}, not text; {fix}")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path}: is UTF-16 text (it starts with a byte-order mark); pass --encoding utf-16, or save "
                        "the file as UTF-8")  # fmt: skip
    if b"\x00" in head:
        odd, even = head[1::2].count(0), head[0::2].count(0)
        if max(odd, even) > len(head) // 4 and min(odd, even) == 0:
            order = "le" if odd > even else "be"
            raise DataError(
                f"{path}: looks like UTF-16 text without a byte-order mark (a NUL byte beside each character); "
                f"pass --encoding utf-16-{order}, or save the file as UTF-8"
            )


def decode_file(path: Path, encoding: str, *, lone_cr_breaks: bool = False) -> str:
    """The file's text; a decoding error names its line (``lone_cr_breaks``: a "\r" alone ends a line, as the
    csv reader counts them, so the number matches that reader's other messages)."""
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty; it needs at least one row of data")
    try:
        # utf-8-sig drops a byte-order mark (GLUE's MRPC starts with one); any spelling of utf-8 does.
        return raw.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        # exc.start counts from after a dropped byte-order mark: count lines in the bytes actually decoded.
        line = exc.object.count(b"\n", 0, exc.start) + 1
        if lone_cr_breaks:
            line += exc.object.count(b"\r", 0, exc.start) - exc.object.count(b"\r\n", 0, exc.start)
        byte = len(raw) - len(exc.object) + exc.start
        raise DataError(
            f"{path} line {line}: bytes are not valid {encoding} ({exc.reason} at byte {byte}); "
            f"pass the file's encoding, e.g. --encoding latin-1 or --encoding cp1252"
        ) from None
    except LookupError:
        raise DataError(f"--encoding {encoding!r} is not a known text encoding (try utf-8, latin-1)") from None


def codec(encoding: str) -> str:
    """The Python codec for ``--encoding``: utf-8 read as utf-8-sig, so a byte-order mark is dropped."""
    try:
        # utf-8-sig drops a byte-order mark (GLUE's MRPC starts with one); any spelling of utf-8 does.
        return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    except LookupError:
        raise DataError(f"--encoding {encoding!r} is not a known text encoding (try utf-8, latin-1)") from None
