"""The holder's face in the photo box of an upright card's face side.

The detector is the LBP frontal-face cascade that scikit-image ships in its wheel (OpenCV 5's
headless wheel, our cv2, has neither CascadeClassifier nor the Haar files any more). Without
scikit-image there is no face, never a guessed one: `detect` returns None.
"""

import threading

import numpy as np

from app.idcard.region import HEIGHT, WIDTH

# The photo box of the face side, as fractions of the canonical card (the print is at
# x 0.60-0.94, y 0.08-0.72; the margin lets a card found a little off still hold it).
PHOTO = (0.55, 0.02, 0.99, 0.80)  # left, top, right, bottom
MIN_FACE, MAX_FACE = 60, 300  # canonical pixels: the printed face is ~110-200 px wide
_lock = threading.Lock()
_cascade = None


def _detector():
    global _cascade
    if _cascade is None:
        from skimage import data
        from skimage.feature import Cascade

        _cascade = Cascade(data.lbp_frontal_face_cascade_filename())
    return _cascade


def available() -> bool:
    try:
        import skimage.feature  # noqa: F401
    except ImportError:
        return False
    return True


def detect(card: np.ndarray) -> tuple[float, float, float, float] | None:
    """(left, top, width, height) of the largest face in the photo box of a canonical upright
    card (RGB, WIDTH x HEIGHT), in its pixels; None when there is none or no detector."""
    if not available():
        return None
    left, top = round(PHOTO[0] * WIDTH), round(PHOTO[1] * HEIGHT)
    box = np.ascontiguousarray(card[top : round(PHOTO[3] * HEIGHT), left : round(PHOTO[2] * WIDTH)])
    gray = box.mean(axis=2).astype(np.float32) / 255.0
    with _lock:
        found = _detector().detect_multi_scale(
            img=gray,
            scale_factor=1.15,
            step_ratio=1.2,
            min_size=(MIN_FACE, MIN_FACE),
            max_size=(MAX_FACE, MAX_FACE),
        )
    if not found:
        return None
    face = max(found, key=lambda hit: hit["width"] * hit["height"])
    return float(face["c"] + left), float(face["r"] + top), float(face["width"]), float(face["height"])
