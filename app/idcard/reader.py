"""One card read: find it (region), warp it upright at the canonical size, read its lines with
the caller's OCR, parse its fields, find the face, and map everything back to source pixels.

Which way up: the found corners leave two turns that make the card landscape. A cheap cue
orders them (face side: where the face detector finds a face in the photo box; back: the red
emblem at the top-left); the first is read, and the other only when the first reading is not
complete, the better of the two kept. So a card reads with one OCR call when it reads well.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from app.engines.base import Line
from app.idcard import face, fields, region

SIDES = ("face", "back")
ReadLines = Callable[[Image.Image], list[Line]]


@dataclass(frozen=True)
class CardReading:
    """What was read of one side of a card; every position in the source image's pixels."""

    side: str
    fields: dict[str, str]
    success: bool
    # the card's corners: top-left, bottom-left, bottom-right, top-right of the upright card
    # (counter-clockwise, as Aliyun's market product orders them)
    card_region: list[dict[str, float]]
    face_rect: dict[str, Any] | None = None  # {"angle", "center": {x, y}, "size": {width, height}}
    face_rect_vertices: list[dict[str, float]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)  # reading order, boxes in source pixels
    rotation: int = 0  # degrees clockwise the card was turned to be read upright
    skew: float = 0.0  # and then this many degrees clockwise

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def answer(self) -> dict[str, Any]:
        """The market product's keys (the caller adds config_str and request_id)."""
        if self.side == "face":
            return {
                "address": self.fields["address"],
                # No face found: the shape the product's clients index into, of size 0.
                "face_rect": self.face_rect or NO_FACE_RECT,
                "face_rect_vertices": self.face_rect_vertices or [dict(ORIGIN) for _ in range(4)],
                "card_region": self.card_region,
                "name": self.fields["name"],
                "nationality": self.fields["nationality"],
                "num": self.fields["num"],
                "sex": self.fields["sex"],
                "birth": self.fields["birth"],
                "success": self.success,
            }
        return {
            "start_date": self.fields["start_date"],
            "end_date": self.fields["end_date"],
            "issue": self.fields["issue"],
            "success": self.success,
        }


ORIGIN = {"x": 0.0, "y": 0.0}
NO_FACE_RECT = {"angle": 0.0, "center": ORIGIN, "size": {"width": 0.0, "height": 0.0}}


@dataclass
class _Attempt:
    turn: int
    matrix: np.ndarray
    card: np.ndarray
    face: tuple[float, float, float, float] | None = None
    lines: list[Line] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    score: int = -1


def read(image: Image.Image, side: str, read_lines: ReadLines) -> CardReading:
    """Read one side ("face" or "back") of the card in `image`."""
    if side not in SIDES:
        raise ValueError(f"side is one of {', '.join(SIDES)}, not {side!r}")
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    placement = region.find(rgb)
    attempts = []
    for turn in region.turns(placement.corners):
        matrix = region.homography(placement.corners, turn)
        attempts.append(_Attempt(turn, matrix, region.warp(rgb, matrix)))
    if side == "face":
        for attempt in attempts:
            attempt.face = face.detect(attempt.card)
        attempts.sort(key=lambda attempt: attempt.face is None)
    else:
        attempts.sort(key=lambda attempt: -_emblem_red(attempt.card))

    for attempt in attempts:
        attempt.lines = read_lines(Image.fromarray(attempt.card))
        attempt.fields = fields.parse(side, attempt.lines)
        attempt.score = fields.score(side, attempt.fields)
        if fields.success(side, attempt.fields):
            break
    best = max(attempts, key=lambda attempt: attempt.score)  # the first of equals: the cue's
    return _reading(side, placement, best)


def _emblem_red(card: np.ndarray) -> float:
    """How much more red ink the top-left (the emblem's place) has than the bottom-right."""
    small = card[::4, ::4].astype(np.int16)
    red = (small[:, :, 0] - np.maximum(small[:, :, 1], small[:, :, 2])) > 60
    height, width = red.shape
    return float(
        red[: height * 2 // 5, : width // 4].mean() - red[height * 3 // 5 :, width * 3 // 4 :].mean()
    )


def _point(x: float, y: float) -> dict[str, float]:
    return {"x": round(float(x), 1), "y": round(float(y), 1)}


def _reading(side: str, placement: region.Placement, best: _Attempt) -> CardReading:
    upright = region.upright_corners(placement.corners, best.turn)
    top_left, top_right, bottom_right, bottom_left = upright
    rotation, skew = region.rotation_and_skew(placement.corners, best.turn)
    lines = [
        Line(
            text=line.text,
            box=[
                [round(float(x), 1), round(float(y), 1)] for x, y in region.to_source(line.box, best.matrix)
            ],
            score=line.score,
            page=line.page,
        )
        for line in fields.reading_order(best.lines)
    ]
    face_rect, vertices = None, []
    if side == "face" and best.face is not None:
        face_rect, vertices = _face_rect(best.face, upright, best.matrix, rotation + skew)
    return CardReading(
        side=side,
        fields=best.fields,
        success=fields.success(side, best.fields),
        card_region=[_point(*corner) for corner in (top_left, bottom_left, bottom_right, top_right)],
        face_rect=face_rect,
        face_rect_vertices=vertices,
        lines=lines,
        rotation=rotation,
        skew=skew,
    )


def _face_rect(
    found: tuple[float, float, float, float], upright: np.ndarray, matrix: np.ndarray, turned: float
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """The face's rotated rectangle in source pixels, OpenCV's RotatedRect convention (angle
    clockwise, vertices as cv2.boxPoints gives them, which is the order Aliyun's answer has)."""
    left, top, width, height = found
    center = region.to_source(np.array([[left + width / 2, top + height / 2]]), matrix)[0]
    across = (
        (np.linalg.norm(upright[1] - upright[0]) + np.linalg.norm(upright[2] - upright[3])) / 2 / region.WIDTH
    )
    down = (
        (np.linalg.norm(upright[3] - upright[0]) + np.linalg.norm(upright[2] - upright[1]))
        / 2
        / region.HEIGHT
    )
    size = (float(width * across), float(height * down))
    angle = round((-turned + 180) % 360 - 180, 2)  # the card, so the face, lies turned the other way
    vertices = cv2.boxPoints(((float(center[0]), float(center[1])), size, angle))
    rect = {
        "angle": angle,
        "center": _point(*center),
        "size": {"width": round(size[0], 1), "height": round(size[1], 1)},
    }
    return rect, [_point(*vertex) for vertex in vertices]
