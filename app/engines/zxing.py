"""zxing-cpp: barcodes and QR codes (task `barcode`). Every symbol found is a line whose text
is its payload and whose box is the symbol's four corners; `Result.extra["barcodes"]` adds
each one's format and content type. Read with zxing-cpp's public read_barcodes only. An image
without one reads as no lines here; app/recognition.py refuses a source with none at all."""

import importlib.metadata

from app.engines.base import EngineConfig, Line, Options, Picture, PythonPackageEngine, Result
from app.errors import InvalidInput


class ZxingEngine(PythonPackageEngine):
    packages = ("zxingcpp",)
    name = "zxing"
    tasks = ("barcode",)
    default_lang = ""
    outputs: tuple[str, ...] = ()

    def __init__(self, config: EngineConfig) -> None:
        self.config = config  # zxing-cpp has no model to load and no thread pool to size

    def version(self) -> str:
        return importlib.metadata.version("zxing-cpp")  # the distribution, not the module

    def runtime(self) -> None:
        return None

    def languages(self) -> list[str]:
        return []

    def normalize_lang(self, lang: str) -> str:
        if lang:
            raise InvalidInput(
                "zxing reads barcodes and takes no language; leave lang empty.", code="unsupported_language"
            )
        return ""

    def warm_up(self) -> None:
        """Nothing to load: zxing-cpp's readers are plain code."""

    def recognize(self, picture: Picture, options: Options) -> Result:
        import zxingcpp

        found = zxingcpp.read_barcodes(picture.image, text_mode=zxingcpp.TextMode.HRI)
        lines, barcodes = [], []
        for symbol in found:
            corners = symbol.position
            box = [
                [float(point.x), float(point.y)]
                for point in (corners.top_left, corners.top_right, corners.bottom_right, corners.bottom_left)
            ]
            lines.append(Line(text=symbol.text, box=box, score=None))
            barcodes.append(
                {
                    "format": str(symbol.format),
                    "text": symbol.text,
                    "content_type": symbol.content_type.name.lower(),
                    "box": box,
                    "orientation": symbol.orientation,
                }
            )
        return Result(lines=lines, text="\n".join(line.text for line in lines), extra={"barcodes": barcodes})
