"""
Shared pieces of the annotation parsers: the error and result types, decoding, and the record loop that
turns a malformed record into an :class:`AnnotationFormatError` (strict) or a counted, logged skip (lenient).

Import the public names from :mod:`dld.data.formats`.
"""
import logging
import math
import os
import reprlib
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["AnnotationFormatError", "AnnotationList", "IGNORE_TEXTS", "DONT_CARE"]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
# What a text parser reads: a path, or the raw bytes of a file (e.g. a zip member).
TextSource = Union[PathLike, bytes]

# Transcriptions that mark a "don't care" region: "###" in the ICDAR formats, "#" in Total-Text.
DONT_CARE = "###"
IGNORE_TEXTS = frozenset({DONT_CARE, "#"})


class AnnotationFormatError(ValueError):
    """A ground-truth file that cannot be parsed; the message names the file and, when known, the line."""


class AnnotationList(list):
    """
    The words parsed from one file: a plain list of word dicts plus ``num_skipped``, the number of malformed
    records dropped in lenient mode (always 0 in strict mode).
    """

    num_skipped: int = 0


def source_name(source: TextSource, name: Optional[str]) -> str:
    """The name that error messages use for ``source``."""
    if name is not None:
        return name
    return "<bytes>" if isinstance(source, (bytes, bytearray)) else os.fspath(source)


def read_bytes(source: TextSource) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    with open(source, "rb") as f:
        return f.read()


def decode_text(data: Union[str, bytes], name: str) -> str:
    """UTF-8 text with an optional BOM; anything else raises :class:`AnnotationFormatError` naming ``name``."""
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise AnnotationFormatError(f"{name}: not valid UTF-8 text ({e})") from e


def split_lines(text: str) -> List[str]:
    """Lines without their LF / CRLF terminators; a lone ``\\r`` inside a line is kept."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse_number(field: str) -> Optional[float]:
    """``float(field)`` if it is a finite number, else None."""
    try:
        value = float(field)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_coordinates(fields: Sequence[str]) -> List[float]:
    """The fields as numbers; ``ValueError`` naming the first field that is not one."""
    coords = [parse_number(f) for f in fields]
    for field, value in zip(fields, coords):
        if value is None:
            raise ValueError(f"coordinate {field.strip()!r} is not a number")
    return coords  # type: ignore[return-value]


def make_word(coords: Sequence[float], text: str, ignore: bool, **extra: Any) -> Dict[str, Any]:
    word = {"polygon": np.asarray(coords, dtype=np.float64).reshape(-1, 2), "text": text, "ignore": ignore}
    word.update(extra)
    return word


def parse_records(
    records: Iterable[Tuple[int, Any]],
    name: str,
    parse_record: Callable[[Any], Dict[str, Any]],
    lenient: bool,
    unit: str = "line",
) -> AnnotationList:
    """
    Parse ``(number, record)`` pairs in order. ``parse_record`` raises ``ValueError`` saying what is wrong;
    that becomes an :class:`AnnotationFormatError` "<name>, <unit> <number>: ..." or, when ``lenient``, a
    logged skip counted in ``num_skipped``. Each word gets its number under the key ``unit`` (``"line"``,
    ``"row"``).
    """
    words = AnnotationList()
    for number, record in records:
        try:
            word = parse_record(record)
            # Later checks (e.g. against the image size) name the line too.
            word[unit] = number
            words.append(word)
        except ValueError as e:
            shown = repr(record[:80]) if isinstance(record, str) else reprlib.repr(record)
            message = f"{name}, {unit} {number}: {e}: {shown}"
            if not lenient:
                raise AnnotationFormatError(message) from None
            words.num_skipped += 1
            logger.warning("Skipping malformed annotation: %s", message)
    return words


def load_text(source: TextSource, name: Optional[str] = None) -> Tuple[str, str]:
    """``(decoded text, name for messages)`` of a path or of a file's raw bytes."""
    name = source_name(source, name)
    return decode_text(read_bytes(source), name), name


def parse_lines(text: str, name: str, parse_line: Callable[[str], Dict[str, Any]], lenient: bool) -> AnnotationList:
    """One word per non-blank line; lines are numbered from 1 as in the file."""
    lines = split_lines(text)
    return parse_records(
        ((i, line) for i, line in enumerate(lines, start=1) if line.strip()), name, parse_line, lenient
    )
