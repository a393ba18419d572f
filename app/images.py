"""Bytes -> a validated, upright RGB image. All image decoding lives here.

Limits are checked before pixels are decoded (the header gives the size), so a
decompression bomb costs a few bytes of parsing, not gigabytes of memory.
"""

import io
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image, ImageChops, ImageFile, ImageOps, ImageStat, UnidentifiedImageError

from app.errors import InvalidInput, TooLarge

# Formats a client may upload. SVG, PDF, EPS and friends are not raster images
# Pillow should be trusted to parse here.
# MPO is a JPEG holding more pictures after the photo (phones' Ultra HDR gain maps, previews):
# Pillow names it so; the first picture is the photo.
ALLOWED_FORMATS = {"PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO"}
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's own bomb check is a process-wide global; ours (check_pixels, from the
# header, before any pixel is decoded) follows OCR_MAX_PIXELS instead.
Image.MAX_IMAGE_PIXELS = None
# Tesseract refuses a side over 32767 px, and ddddocr scales an image to 64 px high, so a
# 100000×1 strip would take gigabytes: both are refused from the header, before decoding.
MAX_SIDE = 32767
MAX_ASPECT = 200


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, EXIF orientation applied
    format: str  # Pillow's name, e.g. "PNG"
    width: int
    height: int

    @property
    def extension(self) -> str:
        return {"JPEG": ".jpg", "MPO": ".jpg", "TIFF": ".tif"}.get(self.format, f".{self.format.lower()}")


def check_size(data: bytes) -> None:
    if not data:
        raise InvalidInput("The image is empty (0 bytes).", code="empty_image")
    limit = settings.OCR_MAX_UPLOAD_BYTES
    if len(data) > limit:
        raise TooLarge(f"The image is {len(data)} bytes; the limit is {limit} bytes.", code="file_too_large")


def decode(data: bytes) -> DecodedImage:
    """Validate and decode an uploaded image, refusing anything we cannot read safely."""
    check_size(data)
    max_pixels = settings.OCR_MAX_PIXELS
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
        fmt = img.format or ""
        if fmt not in ALLOWED_FORMATS:
            raise InvalidInput(
                f"Unsupported image format {fmt or 'unknown'}; "
                f"send one of {', '.join(sorted(ALLOWED_FORMATS))}.",
                code="unsupported_format",
            )
        check_pixels(img.width, img.height, max_pixels)
        img.seek(0)  # first frame of an animation
        img.load()
    except UnidentifiedImageError as exc:
        raise InvalidInput("The file is not an image this service can read.", code="invalid_image") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise InvalidInput(f"The image is truncated or corrupt ({exc}).", code="invalid_image") from exc
    upright = _to_rgb(_apply_orientation(img))
    return DecodedImage(
        image=upright,
        format=fmt,
        width=upright.width,
        height=upright.height,
    )


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """An image's (or a PDF page's) size within the limits every engine can read in memory."""
    if width <= 0 or height <= 0:
        raise InvalidInput("The image has no pixels.", code="invalid_image")
    if max(width, height) > MAX_SIDE:
        raise TooLarge(
            f"The image is {width}×{height} pixels; no side may pass {MAX_SIDE}.", code="image_too_large"
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidInput(
            f"The image is {width}×{height} pixels: a strip over {MAX_ASPECT} times longer than wide "
            "holds no readable text.",
            code="invalid_image",
        )
    if width * height > max_pixels:
        raise TooLarge(
            f"The image is {width}×{height} = {width * height} pixels; the limit is {max_pixels}.",
            code="image_too_large",
        )


def _apply_orientation(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not cost the user the image
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Bring every mode (16-bit, float, palette, alpha, CMYK, 1-bit) to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        img = Image.fromarray(((arr - low) * scale).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info):
        img = _flatten(img.convert("RGBA"))
    return img.convert("RGB") if img.mode != "RGB" else img


def _flatten(img: Image.Image) -> Image.Image:
    """Put an RGBA image on the paper its visible pixels contrast with.

    Transparent pixels are the paper, but its colour is not in the file: black text on
    transparency needs white paper, white text (a logo, a dark-mode screenshot) needs black.
    The alpha-weighted luminance of what is drawn tells which, summed from 8-bit channels
    (a float copy of a 40-megapixel page would cost 640 MB)."""
    alpha = img.getchannel("A")
    drawn = ImageStat.Stat(alpha).sum[0] / 255
    weighted = ImageStat.Stat(ImageChops.multiply(img.convert("L"), alpha)).sum[0]
    ink = weighted / drawn if drawn else 0.0
    paper = (0, 0, 0, 255) if ink > 127.5 else (255, 255, 255, 255)
    return Image.alpha_composite(Image.new("RGBA", img.size, paper), img).convert("RGB")


# A page of paper, as `auto` tells it from a photo or a screenshot (registry.by_content): a scan
# or a drawn PDF page is large (a letter page at 200 dpi is 3.7 megapixels), nearly colourless and
# mostly white. On the shared corpus every document scan and PDF page passes, and no photo,
# screenshot, card, crop or table image (the closest: a 1.8-megapixel photo, 38 % white).
PAPER_PIXELS = 2_500_000
PAPER_MAX_COLOUR = 12.0  # mean of max(R, G, B) - min(R, G, B) over a thumbnail
PAPER_MIN_WHITE = 0.6  # the share of a thumbnail's pixels lighter than 200


def looks_like_paper(image: Image.Image) -> bool:
    if image.width * image.height < PAPER_PIXELS:
        return False
    thumbnail = image.reduce(max(1, max(image.size) // 400))  # box averages: no copy of the page
    pixels = np.asarray(thumbnail.convert("RGB"), dtype=np.int16)
    colour = float((pixels.max(axis=2) - pixels.min(axis=2)).mean())
    white = float((np.asarray(thumbnail.convert("L")) > 200).mean())
    return colour <= PAPER_MAX_COLOUR and white >= PAPER_MIN_WHITE
