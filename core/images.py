"""Opening images defensively and turning any PIL image into faithful RGB.

``open_image`` decodes a PIL image, encoded bytes or a path completely and refuses what would
otherwise give a traceback deep inside a processor, a hang or silently odd pixels: anything but a
regular file (a FIFO would block forever), files that are not images, truncated or empty files,
decompression bombs and extreme aspect ratios. Every refusal is a
``BadImage`` (a ``DataError``, so a ``ValueError``) whose message names the file.

``to_rgb`` converts by value range rather than by PIL's ``convert("RGB")`` alone, which clips
16-bit grayscale ("I;16") to white and drops alpha onto black. ``load_rgb`` is both.

Import-light: PIL and numpy are imported inside the functions; no torch.
"""
from __future__ import annotations

import os
import re
from typing import Any

from .io import DataError

#: Largest image accepted, in pixels (width x height, read from the header before decoding).
#: 64 MP (8000 x 8000) keeps the 45-61 MP photos of current full-frame cameras and stays below
#: PIL's own bomb warning (``Image.MAX_IMAGE_PIXELS``, about 89 MP), so with PIL's defaults this
#: check fires first and names the size. Decoded as RGB that is ~190 MB, and every vision
#: processor resizes to about a megapixel anyway; larger inputs are bombs or whole-slide scans
#: that have to be tiled before they are training data.
MAX_PIXELS = 64_000_000

#: Largest accepted ratio of the long side to the short side (1:50).
#: Qwen2-VL's ``smart_resize`` raises beyond 1:200, and long before that the short side shrinks
#: to a single 28-pixel patch row (a 4000 x 2 strip becomes one degenerate row of patches), while
#: the families that resize to a square (LLaVA, Mllama tiles) stretch the short side 50-fold at
#: 1:50. Photos, scans, documents, receipts and panoramas stay well under 1:10, so 1:50 leaves
#: generous headroom for real data and refuses strips, rulers and corrupt headers.
MAX_ASPECT_RATIO = 50

#: The grey value of an image with a single value in a high-bit-depth mode ("I;16", "I", "F"):
#: there is no range to stretch, and black is what a blank detector frame or padding slice (the
#: common constant image, all zeros) looks like.
CONSTANT_IMAGE_VALUE = 0

_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class BadImage(DataError):
    """An image that cannot be used; the message names the file (or "image bytes") and the problem."""


def _label(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "image bytes"
    return "image"


def _check_size(label: str, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise BadImage(f"{label}: empty image {width} x {height}")
    if width * height > MAX_PIXELS:
        raise BadImage(f"{label}: image too large: {width} x {height} pixels (limit {MAX_PIXELS})")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise BadImage(f"{label}: extreme aspect ratio {width} x {height} (limit 1:{MAX_ASPECT_RATIO})")


def _bomb_message(label: str, exc: BaseException) -> BadImage:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{found.group(1)} pixels" if found else "over PIL's decompression-bomb limit"
    return BadImage(f"{label}: image too large: {size} (limit {MAX_PIXELS})")


def _load(image, label: str) -> None:
    """Decode ``image`` completely (truncation shows only here); PIL's errors become BadImage."""
    from PIL import Image

    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_message(label, exc) from exc
    except EOFError as exc:
        raise BadImage(f"{label}: truncated image file") from exc
    except MemoryError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib/struct errors ...
        if "truncated" in str(exc).lower():
            raise BadImage(f"{label}: truncated image file") from exc
        raise BadImage(f"{label}: corrupt image data ({type(exc).__name__}: {exc})") from exc


def _first_frame(image, label: str) -> None:
    """Animated images (GIF, APNG, multi-page TIFF) are used by their first frame."""
    if image.tell() != 0:  # not ``n_frames``: counting a GIF's frames reads the whole file
        try:
            image.seek(0)
        except Exception as exc:
            raise BadImage(f"{label}: animated image: cannot go back to the first frame ({exc})") from exc


def open_image(source: Any):
    """A fully decoded PIL image from a PIL image, the bytes of an encoded image, or a path.

    The header's size is checked (``MAX_PIXELS``, ``MAX_ASPECT_RATIO``) before any pixel is
    decoded; the image is then loaded completely so a truncated file fails here, not later.
    Animated images are positioned on their first frame (not an error). Raises ``BadImage``
    naming the file for anything unusable (a missing file included).
    """
    from PIL import Image

    label = _label(source)
    if isinstance(source, Image.Image):
        _check_size(label, *source.size)
        _first_frame(source, label)
        _load(source, label)
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        import io

        data = bytes(source)
        if not data:
            raise BadImage(f"{label}: empty file (0 bytes)")
        return _decode(io.BytesIO(data), label)
    with open_regular(source) as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise BadImage(f"{label}: empty file (0 bytes)")
        return _decode(handle, label)


def open_regular(path: str | os.PathLike):
    """``path`` opened for binary reading, refused (``BadImage``) unless it is a regular file.

    Opened non-blocking and checked on the open descriptor: a FIFO named as an image would block
    a plain ``open`` forever (no writer ever comes), and a device or socket never ends; checking
    the descriptor rather than the name leaves no window for the file to be swapped in between.
    A symlink loop, a missing file and a folder are refused the same way, naming the file."""
    import errno
    import stat

    label = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as exc:
        raise BadImage(f"{label}: no such file") from exc
    except IsADirectoryError as exc:
        raise BadImage(f"{label}: a directory, not an image file") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadImage(f"{label}: a symlink loop, not an image file") from exc
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise BadImage(f"{label}: {kind}, not an image file")
    if hasattr(os, "O_NONBLOCK"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _decode(handle, label: str):
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        # PIL warns (from ~89 MP) and raises (from ~179 MP) while reading the header; our own
        # limit is lower, but a lowered Image.MAX_IMAGE_PIXELS must refuse too, not only warn.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(handle)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_message(label, exc) from exc
        except Image.UnidentifiedImageError as exc:
            raise BadImage(f"{label}: not an image file") from exc
        except MemoryError:
            raise
        except Exception as exc:
            raise BadImage(f"{label}: not an image file ({type(exc).__name__}: {exc})") from exc
        _check_size(label, *opened.size)
        _first_frame(opened, label)
        _load(opened, label)
    return opened


def _has_alpha(image) -> bool:
    if image.mode in _ALPHA_MODES:
        return True
    if image.mode in ("1", "L", "P", "RGB") and image.info.get("transparency") is not None:
        return True
    palette = getattr(image, "palette", None)
    return image.mode == "P" and palette is not None and palette.mode == "RGBA"


def _stretch(image):
    """A high-bit-depth single-channel image as "L", scaled from its own min..max to 0..255."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image)
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.any():
            return Image.new("L", image.size, CONSTANT_IMAGE_VALUE)
        if not finite.all():
            low, high = float(values[finite].min()), float(values[finite].max())
            values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    low, high = float(values.min()), float(values.max())
    if high == low:
        return Image.new("L", image.size, CONSTANT_IMAGE_VALUE)
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return Image.fromarray(np.rint(scaled, out=scaled).clip(0, 255).astype(np.uint8))


def _onto_white(image):
    """An image with alpha composited onto a white background, as RGB."""
    from PIL import Image

    if image.mode == "La":  # premultiplied: over white is value + (255 - alpha)
        import numpy as np

        pixels = np.asarray(image).astype(np.uint16)
        grey = np.minimum(pixels[..., 0] + 255 - pixels[..., 1], 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image):
    """``image`` as RGB, in a new image (the input is left as it is; an RGB one comes back as itself).

    * "I;16"/"I;16B"/"I;16L"/"I"/"F": scaled from the image's own min..max to 0..255 (so 12-bit
      data stored in 16 bits comes out full-range); a constant image becomes
      ``CONSTANT_IMAGE_VALUE`` (black); NaN counts as the minimum.
    * with alpha ("RGBA", "LA", "PA", "RGBa", "La", "P"/"L"/"RGB" with a transparency entry):
      composited onto white.
    * animated images: the first frame.
    * anything else ("1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", ...): PIL's conversion.
    """
    label = "image"
    if image.tell() != 0:
        frame = image.tell()
        _first_frame(image, label)
        try:
            return to_rgb(image.copy())
        finally:
            image.seek(frame)
    if image.mode == "RGB" and not _has_alpha(image):
        return image
    if image.mode in _HIGH_DEPTH_MODES:
        return _stretch(image).convert("RGB")
    if _has_alpha(image):
        return _onto_white(image)
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise BadImage(f"{label}: unsupported image mode {image.mode!r} ({exc})") from exc


def load_rgb(source: Any):
    """``to_rgb(open_image(source))``: a decoded RGB image or ``BadImage`` naming the file."""
    return to_rgb(open_image(source))
