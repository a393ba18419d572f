"""The 18-character citizen identity number (GB 11643-1999): 6 digits of region, the birth date
YYYYMMDD, a 3-digit sequence whose last digit is odd for men, and an ISO 7064 MOD 11-2 check
character (0-9 or X).

Misreads are corrected only where the correction is certain: look-alike letters become the
digit they stand for (O -> 0, l -> 1, ...), and one character the OCR could not make a digit of
is solved from the check character (exactly one digit fits, or none). A number that still fails
is returned as read, so the caller reports it invalid instead of inventing one.
"""

import datetime
import re

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # check character for (weighted sum mod 11) = 0, 1, 2, ...
# The first two digits: provinces, autonomous regions and municipalities (GB/T 2260), Taiwan,
# Hong Kong, Macau (71, 81, 82 on residence permits) and 83 for foreigners' permanent cards.
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 "
    "71 81 82 83".split()
)
FIRST_BIRTH_YEAR = 1880
# Characters OCR puts for a digit of this print (OCR-B-like digits), and what they stand for.
LOOKALIKES = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "U": "0",
        "〇": "0",
        "I": "1",
        "l": "1",
        "i": "1",
        "|": "1",
        "!": "1",
        "L": "1",
        "J": "1",
        "丨": "1",
        "Z": "2",
        "z": "2",
        "S": "5",
        "s": "5",
        "B": "8",
        "G": "6",
        "b": "6",
        "T": "7",
        "g": "9",
        "q": "9",
        "x": "X",
        "×": "X",
        "Ｘ": "X",
    }
)
UNKNOWN = "?"


def check_char(first17: str) -> str:
    """The MOD 11-2 check character of 17 digits."""
    return CHECK_CHARS[sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True)) % 11]


def birth(number: str) -> str:
    """YYYYMMDD of a number's birth date (positions 7-14), unchecked."""
    return number[6:14]


def sex(number: str) -> str:
    """男 when the 17th digit is odd, 女 when even."""
    return "男" if int(number[16]) % 2 else "女"


def is_date(text: str, *, earliest: int = FIRST_BIRTH_YEAR) -> bool:
    """YYYYMMDD of a real calendar day from `earliest` up to today."""
    if not re.fullmatch(r"\d{8}", text):
        return False
    try:
        day = datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return earliest <= day.year and day <= datetime.date.today()


def is_valid(number: str) -> bool:
    """18 characters: a known province, a real birth date, and the right check character."""
    return (
        bool(re.fullmatch(r"\d{17}[\dX]", number))
        and number[:2] in PROVINCES
        and is_date(birth(number))
        and check_char(number[:17]) == number[17]
    )


def agrees(number: str, birth_date: str, sex_text: str) -> bool:
    """A valid number whose birth date and sex digit are those printed on the card."""
    return is_valid(number) and birth(number) == birth_date and sex(number) == sex_text


def normalize(text: str) -> str:
    """The characters of a number as read: look-alikes made digits, spaces and punctuation
    dropped, anything else left as UNKNOWN (one character the OCR did not make sense of)."""
    text = re.sub(r"[\s.,·:;'\"`_\-]", "", text.translate(LOOKALIKES))
    return "".join(char if char.isascii() and (char.isdigit() or char == "X") else UNKNOWN for char in text)


def correct(text: str) -> str:
    """The number a reading stands for: `normalize`d, and one UNKNOWN digit solved from the
    check character. Returns the normalized text unchanged when that does not give a valid
    number (the caller then reports it invalid)."""
    number = normalize(text)
    if is_valid(number) or len(number) != 18:
        return number
    unknown = [index for index, char in enumerate(number) if char == UNKNOWN or (char == "X" and index < 17)]
    if len(unknown) != 1:
        return number
    index = unknown[0]
    fits = [
        number[:index] + digit + number[index + 1 :] for digit in "0123456789X"[: 11 if index == 17 else 10]
    ]
    valid = [candidate for candidate in fits if is_valid(candidate)]
    return valid[0] if len(valid) == 1 else number


def find(text: str) -> str:
    """The longest run of number-like characters in a line (its label and spaces aside), corrected."""
    runs = re.findall(r"[0-9OoDQIl|iLZzSsBGbTgqXx×]{15,}", re.sub(r"\s", "", text))
    if not runs:
        return ""
    return correct(max(runs, key=lambda run: sum(char.isdigit() for char in run)))
