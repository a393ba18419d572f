"""Chinese resident ID cards (issue 15): find the card in a photo, turn it upright, read its
lines with the OCR call given, and parse the fields of its face or back.

    card = idcard.read(image, "face", read_lines)   # read_lines(upright RGB image) -> [Line]
    card.fields, card.success, card.answer()

Pure: no settings, no database; the caller chooses the engine (RapidOCR in app/recognition.py).
"""

from app.idcard.reader import SIDES, CardReading, read

__all__ = ["SIDES", "CardReading", "read"]
