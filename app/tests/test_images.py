"""app.images: every mode and orientation comes out as upright 8-bit RGB; bad bytes are refused."""

import io

import pytest
from PIL import ExifTags, Image

from app import images
from app.engines import registry
from app.engines.base import Picture
from app.errors import InvalidInput, TooLarge
from app.tests.imaging import cer, encode, english_lines, render, to_16bit

LINES = english_lines(3, seed=2)


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return render(LINES, size=34)


def read_text(data: bytes) -> str:
    engine, options = registry.select(engine="tesseract")
    decoded = images.decode(data)
    return engine.recognize(Picture(decoded.image), options).text


def transparent_text(img: Image.Image) -> Image.Image:
    """Black text on a fully transparent background: must land on white, not black."""
    rgba = Image.new("RGBA", img.size, (0, 0, 0, 0))
    rgba.putalpha(Image.eval(img.convert("L"), lambda v: 255 - v))
    return rgba


@pytest.mark.parametrize(
    ("name", "convert", "fmt"),
    [
        ("png-rgb", lambda img: img, "PNG"),
        ("jpeg", lambda img: img, "JPEG"),
        ("cmyk-jpeg", lambda img: img.convert("CMYK"), "JPEG"),
        ("grey", lambda img: img.convert("L"), "PNG"),
        ("1-bit", lambda img: img.convert("1"), "PNG"),
        ("palette", lambda img: img.convert("P"), "GIF"),
        ("16-bit", to_16bit, "PNG"),
        ("16-bit-tiff", to_16bit, "TIFF"),
        ("transparent-rgba", transparent_text, "PNG"),
        ("webp", lambda img: img, "WEBP"),
        ("bmp", lambda img: img, "BMP"),
    ],
)
def test_every_mode_decodes_to_readable_rgb(page, name, convert, fmt):
    data = encode(convert(page), fmt)
    decoded = images.decode(data)
    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == page.size
    assert cer("\n".join(LINES), read_text(data)) <= 0.05


@pytest.mark.parametrize(("orientation", "stored"), [(3, 180), (6, 90), (8, 270)])
def test_exif_orientation_is_applied_before_ocr(page, orientation, stored):
    """A phone stores the sensor's pixels and an EXIF tag saying how to turn them."""
    sideways = page.rotate(stored, expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(sideways, "JPEG", exif=exif.tobytes(), quality=95)
    decoded = images.decode(data)
    assert (decoded.width, decoded.height) == page.size
    assert cer("\n".join(LINES), read_text(data)) <= 0.05


def test_a_phone_photo_with_a_second_picture_is_read_as_a_jpeg(page):
    """Phones store a gain map or a preview after the photo; Pillow calls that JPEG "MPO"."""
    sideways = page.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    gain_map = Image.new("RGB", (64, 48), "gray")
    data = encode(sideways, "MPO", exif=exif.tobytes(), quality=95, save_all=True, append_images=[gain_map])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = images.decode(data)
    assert (decoded.width, decoded.height, decoded.extension) == (*page.size, ".jpg")
    assert cer("\n".join(LINES), read_text(data)) <= 0.05


def test_animated_gif_uses_the_first_frame(page):
    blank = Image.new("RGB", page.size, "white")
    data = encode(page, "GIF", save_all=True, append_images=[blank, blank], duration=100)
    assert cer("\n".join(LINES), read_text(data)) <= 0.05


def test_pixel_limit_is_checked_from_the_header(settings):
    settings.OCR_MAX_PIXELS = 1000
    with pytest.raises(TooLarge) as caught:
        images.decode(encode(Image.new("L", (100, 11))))
    assert caught.value.code == "image_too_large"
    images.decode(encode(Image.new("L", (100, 10))))


def test_a_format_pillow_reads_but_we_do_not_accept():
    with pytest.raises(InvalidInput) as caught:
        images.decode(encode(Image.new("RGB", (20, 20)), "PCX"))
    assert caught.value.code == "unsupported_format"


def test_extension_follows_the_decoded_format_not_the_client():
    assert images.decode(encode(Image.new("RGB", (8, 8)), "JPEG")).extension == ".jpg"
    assert images.decode(encode(Image.new("RGB", (8, 8)), "TIFF")).extension == ".tif"
    assert images.decode(encode(Image.new("RGB", (8, 8)), "PNG")).extension == ".png"


def turned_png(page: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 3  # stored upside down, to be turned 180
    return encode(page.rotate(180), "PNG", exif=exif.tobytes())


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("jpeg", lambda page: encode(page, "JPEG")),
        ("grey png", lambda page: encode(page.convert("L"), "PNG")),
        ("rgba png", lambda page: encode(transparent_text(page), "PNG")),
        ("palette png", lambda page: encode(page.convert("P"), "PNG")),
        ("rgb png with a transparent colour", lambda page: encode(page, "PNG", transparency=(255, 255, 255))),
        ("animated png", lambda page: encode(page, "PNG", save_all=True, append_images=[page.rotate(90)])),
        ("png with an EXIF turn", turned_png),
    ],
)
def test_other_images_go_to_tesseract_as_decoded(page, name, make):
    data = make(page)
    assert cer("\n".join(LINES), read_text(data)) <= 0.05
