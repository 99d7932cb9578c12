"""The probe's images: built-in colour squares, and image files read safely.

An image's type comes from its content (magic bytes), never from its name.
"""

from __future__ import annotations

import base64
import secrets
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from loader.errors import ProbeInputError
from loader.fileio import FileTooLarge, NotRegularFile, read_regular_file

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The largest image file probe-vision reads unless probe.max_image_bytes says otherwise.
MAX_IMAGE_BYTES = 32 * 1024 * 1024


def solid_png(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    """A ``size``×``size`` PNG of one colour (8-bit RGB, no filtering)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * size  # filter byte 0, then the pixels
    pixels = zlib.compress(row * size, 9)
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def image_mime(data: bytes) -> str | None:
    """The MIME type by magic bytes (PNG, JPEG, WebP, GIF), never by file name."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


@dataclass(frozen=True)
class ProbeImage:
    """One image to ask about: its label in the result, bytes, and what it shows."""

    label: str  # a path, or builtin:<colour>
    data: bytes
    mime: str
    expected: str | None

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def builtin_images(rounds: int) -> list[ProbeImage]:
    """``rounds`` squares, each colour drawn independently at random."""
    colours = [secrets.choice(list(COLOURS)) for _ in range(rounds)]
    return [ProbeImage(f"builtin:{c}", solid_png(COLOURS[c]), "image/png", c) for c in colours]


def user_image(
    path: str | Path, expect: str | None, max_bytes: int = MAX_IMAGE_BYTES
) -> ProbeImage:
    """An image file to ask about. Only a regular file of at most ``max_bytes``
    (``probe.max_image_bytes``) is read: a FIFO would block for ever and
    ``/dev/zero`` never ends."""
    try:
        data = read_regular_file(path, max_bytes)
    except FileNotFoundError:
        raise ProbeInputError(f"{path}: image not found") from None
    except IsADirectoryError:
        raise ProbeInputError(f"{path}: cannot read the image: it is a folder") from None
    except NotRegularFile:
        raise ProbeInputError(
            f"{path}: not a regular file (a FIFO, device or socket); refusing to read it"
        ) from None
    except FileTooLarge:
        raise ProbeInputError(
            f"{path}: larger than {max_bytes:,} bytes (probe.max_image_bytes); refusing to read it"
        ) from None
    except OSError as exc:
        raise ProbeInputError(f"{path}: cannot read the image: {exc.strerror or exc}") from None
    mime = image_mime(data)
    if mime is None:
        raise ProbeInputError(f"{path}: not an image (its content is not PNG, JPEG, WebP or GIF)")
    return ProbeImage(str(path), data, mime, expect)
