"""ENVI headers as text (read, write) and ENVI images opened memory-mapped in (rows, cols, bands) order.

Header values are kept as the text of the file (lists without their braces), so entries such as ``map info``
and ``coordinate system string`` can be written into an output header unchanged.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DataError

# ENVI "data type" codes (complex types are not hyperspectral reflectance and are refused)
DTYPES = {1: np.uint8, 2: np.int16, 3: np.int32, 4: np.float32, 5: np.float64, 12: np.uint16, 13: np.uint32,
          14: np.int64, 15: np.uint64}
# Entries of an input header carried into every output header: where the pixels are and what the bands were
GEOREF_KEYS = ("map info", "coordinate system string", "pixel size", "projection info", "geo points")
SPECTRAL_KEYS = ("wavelength", "wavelength units", "fwhm")
# Entries whose value is written inside braces (ENVI lists and free text)
_BRACED = {"description", "map info", "coordinate system string", "pixel size", "projection info", "geo points",
           "wavelength", "fwhm", "source wavelength", "source fwhm"}
_IMAGE_SUFFIXES = (".img", ".dat", ".raw", ".bsq", ".bil", ".bip", "")


def read_header(hdr: Path | str) -> dict[str, str]:
    """``{key: text}`` of an ENVI header (keys lower-case; a ``{...}`` list keeps the text between its braces)."""
    hdr = Path(hdr)
    try:
        text = hdr.read_text(errors="replace")
    except OSError as exc:
        raise DataError(f"{hdr}: unreadable ENVI header ({exc.strerror})") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "ENVI":
        raise DataError(f"{hdr}: not an ENVI header (expected the first line to be 'ENVI')")
    entries: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if value.startswith("{"):
            while "}" not in value and i < len(lines):
                value += "\n" + lines[i]
                i += 1
            if "}" not in value:
                raise DataError(f"{hdr}: the value of {key!r} opens '{{' but never closes it")
            value = value[1:value.rindex("}")].strip()
        entries[key.lower()] = value
    return entries


def split_list(text: str) -> list[str]:
    """The items of a header list value, stripped."""
    return [item.strip() for item in text.replace("\n", " ").split(",") if item.strip()]


def format_header(entries: Mapping[str, Any]) -> str:
    """ENVI header text from ``{key: value}``: a list or tuple becomes ``{a, b}``; a string is written as is,
    inside braces for list and text entries (``map info``, ``description`` and the like)."""
    out = ["ENVI"]
    for key, value in entries.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            value = "{" + ", ".join(str(v) for v in value) + "}"
        elif key in _BRACED:
            value = "{" + str(value) + "}"
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


def carried_entries(header: Mapping[str, str]) -> dict[str, str]:
    """The georeferencing entries of an input header, and its band centres as ``source wavelength`` /
    ``source fwhm`` (an output's bands are classes, not the input's bands)."""
    carried = {k: header[k] for k in GEOREF_KEYS if k in header}
    for key in SPECTRAL_KEYS:
        if key in header:
            carried["source " + key] = header[key]
    return carried


def envi_class_names(names: Iterable[object]) -> list[str]:
    """Class names fit for an ENVI list ``{a, b}``: commas and braces inside a name would split or end it."""
    return [str(n).replace(",", ";").replace("{", "(").replace("}", ")") for n in names]


def classification_header(shape: Sequence[int], dtype: npt.DTypeLike, names: Sequence[object],
                          palette: npt.ArrayLike, carried: Mapping[str, str] | None = None) -> str:
    """ENVI classification header text of a ``shape`` map of ``dtype`` (uint8 or uint16, little-endian):
    0 = Unclassified (black), k + 1 = class k, plus the ``carried`` entries of an input header."""
    colors = np.vstack([np.zeros((1, 3), np.uint8), np.asarray(palette, dtype=np.uint8)]).astype(int)
    return format_header({
        "description": "hsi class map: 0 = Unclassified, k+1 = class k",
        "samples": shape[1], "lines": shape[0], "bands": 1, "header offset": 0,
        "file type": "ENVI Classification", "data type": 1 if np.dtype(dtype) == np.uint8 else 12,
        "interleave": "bsq", "byte order": 0, "classes": len(names) + 1,
        "class lookup": colors.ravel().tolist(), "class names": ["Unclassified", *envi_class_names(names)],
        **(carried or {})})


def open_image(hdr: Path | str) -> tuple[np.memmap[Any, np.dtype[Any]], dict[str, str]]:
    """``(raw, header)``: the image as a read-only ``numpy.memmap`` viewed as (rows, cols, bands) in the file's
    dtype and byte order (a strided view for BSQ and BIL, nothing read), and the header entries."""
    hdr = Path(hdr)
    header = read_header(hdr)
    try:
        samples, lines, bands = (int(header[k]) for k in ("samples", "lines", "bands"))
        code = int(header.get("data type", "0"))
        offset = int(header.get("header offset", "0"))
        byte_order = int(header.get("byte order", "0"))
    except KeyError as exc:
        raise DataError(f"{hdr}: ENVI header has no {exc.args[0]!r} entry") from None
    except ValueError as exc:
        raise DataError(f"{hdr}: ENVI header has a non-integer size or type entry ({exc})") from None
    for key, value, least in (("samples", samples, 1), ("lines", lines, 1), ("bands", bands, 1),
                              ("header offset", offset, 0)):
        if value < least:
            raise DataError(f"{hdr}: ENVI header says {key} = {value}; expected a whole number >= {least}")
    if byte_order not in (0, 1):
        raise DataError(f"{hdr}: ENVI byte order {byte_order} is not supported (expected 0 for little-endian or "
                        f"1 for big-endian)")
    if code not in DTYPES:
        raise DataError(f"{hdr}: ENVI data type {code} is not supported (expected one of {sorted(DTYPES)}: "
                        f"integers or real floats)")
    interleave = header.get("interleave", "bsq").strip().lower()
    layouts = {"bsq": (bands, lines, samples), "bil": (lines, bands, samples), "bip": (lines, samples, bands)}
    if interleave not in layouts:
        raise DataError(f"{hdr}: unknown interleave {interleave!r} (expected bsq, bil or bip)")
    dtype = np.dtype(DTYPES[code]).newbyteorder(">" if byte_order == 1 else "<")
    image = image_file(hdr)
    needed = offset + samples * lines * bands * dtype.itemsize
    size = image.stat().st_size
    if size != needed:
        what = "truncated ENVI image" if size < needed else "ENVI image larger than its header says"
        raise DataError(f"{image}: {what}: {size} bytes, expected exactly {needed} ({lines} lines x {samples} "
                        f"samples x {bands} bands of {dtype.name} after a {offset}-byte offset); check the "
                        f"header's samples, lines, bands, data type and header offset")
    mapped = np.memmap(image, dtype=dtype, mode="r", offset=offset, shape=layouts[interleave])
    order = {"bsq": (1, 2, 0), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    return mapped.transpose(order), header


def image_file(hdr: Path) -> Path:
    """The image file beside an ENVI header (same name, usual suffixes or none)."""
    for suffix in _IMAGE_SUFFIXES:
        for candidate in (hdr.with_suffix(suffix), hdr.with_suffix(suffix.upper())):
            if candidate != hdr and candidate.is_file():
                return candidate
    raise DataError(f"{hdr}: no image file beside the header (looked for {hdr.stem} with "
                    f"{', '.join(s or 'no suffix' for s in _IMAGE_SUFFIXES)})")
