"""app/idcard (issue 15): the number's rules, the fields of drawn cards in every variant (plain,
on a photo, turned, JPEG; both sides) read with the real RapidOCR, their corners and face,
what an unreadable field and a non-card give, and the corpus's real specimen."""

import io
import math
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from app import idcard
from app.engines.base import Line, Options, Picture
from app.engines.registry import ENGINES
from app.idcard import fields, number
from app.tests import corpus
from app.tests.idcards import VARIANTS, Specimen, specimen
from app.tests.imaging import english_lines, render

CORPUS_CARD = "files/chineseocr/idcard-demo.jpeg"
FACE_KEYS = {
    "address",
    "face_rect",
    "face_rect_vertices",
    "card_region",
    "name",
    "nationality",
    "num",
    "sex",
    "birth",
    "success",
}
BACK_KEYS = {"start_date", "end_date", "issue", "success"}
# the upright card's quarter turn as the variant lies (clockwise to read it)
ROTATIONS = {"plain": 0, "photo": 0, "jpeg": 0, "turned90": 270, "turned180": 180, "turned270": 90}


class Reader:
    """RapidOCR's document lines, as app/recognition.py passes them, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: Image.Image) -> list[Line]:
        self.calls += 1
        options = Options(lang="chi_sim+eng", task="document")
        return ENGINES["rapidocr"].recognize(Picture(image), options).lines


@pytest.fixture(scope="module")
def read_lines() -> Callable[[Image.Image], list[Line]]:
    ENGINES["rapidocr"].warm_up()
    return Reader()


# ---- the number ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first17", "check"),
    [("11010519491231002", "X"), ("43051219890813136", "9"), ("53010219850429897", "0")],
)
def test_check_char_is_iso_7064_mod_11_2(first17, check):
    assert number.check_char(first17) == check


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("11010519491231002X", True),
        ("430512198908131369", True),
        ("430512198908131367", False),  # check character (the corpus specimen's: it prints 7)
        ("11010519491231002x", False),  # lower-case x is a reading, not a number (correct() makes it X)
        ("430512198913131363", False),  # month 13
        ("990512198908131367", False),  # no province 99
        ("43051219890813136", False),  # 17 characters
        ("4305121989081313670", False),  # 19
        ("430512290008131366", False),  # born in 2900
    ],
)
def test_is_valid(text, valid):
    assert number.is_valid(text) is valid


@pytest.mark.parametrize(
    ("reading", "corrected"),
    [
        ("43O5l2l989O8l3l369", "430512198908131369"),  # look-alike letters
        ("4305 1219 8908 1313 69", "430512198908131369"),  # spaces
        ("11010519491231002x", "11010519491231002X"),
        ("4305121989081313?9", "430512198908131369"),  # one unknown digit: the check digit solves it
        ("43051219890813136?", "430512198908131369"),  # an unknown check character
        ("430512198908131367", "430512198908131367"),  # wrong, and nothing says which digit: as read
        ("43051219890813??69", "43051219890813??69"),  # two unknowns: as read
    ],
)
def test_correct(reading, corrected):
    assert number.correct(reading) == corrected


def test_birth_sex_and_agreement():
    assert number.birth("430512198908131369") == "19890813"
    assert number.sex("430512198908131369") == "女"  # 17th digit 6
    assert number.sex("110105194912310038") == "男"  # 3
    assert number.agrees("430512198908131369", "19890813", "女")
    assert not number.agrees("430512198908131369", "20130506", "女")
    assert not number.agrees("430512198908131369", "19890813", "男")


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("2015.03.01-2035.03.01", ("20150301", "20350301")),
        ("2010.01.01-长期", ("20100101", "长期")),
        ("2O15.O3.01-2035.03.0l", ("20150301", "20350301")),
        ("2015.03.01-", ("20150301", "")),
        ("2015.13.01-2035.03.01", ("", "20350301")),
    ],
)
def test_validity(text, dates):
    assert fields._validity(text) == dates


def _line(text: str, left: float, top: float, right: float, bottom: float) -> Line:
    return Line(text=text, box=[[left, top], [right, top], [right, bottom], [left, bottom]], score=0.99)


def test_fields_by_label_and_by_place():
    """A misread label (娃名, 住扯) still names its row; the address's second line joins it;
    a row whose label is lost is found where the layout prints it."""
    lines = [
        _line("娃名", 56, 92, 130, 126),
        _line("张三丰", 150, 92, 260, 126),
        _line("性别男", 56, 158, 190, 192),
        _line("民族汉", 250, 158, 370, 192),
        _line("1980 年 7 月 9 日", 150, 220, 460, 252),  # 出生 not read at all
        _line("住扯 浙江省杭州市余杭区文一西路", 56, 282, 540, 318),
        _line("969号", 150, 320, 230, 356),
        _line("公民身份号码", 60, 448, 260, 478),
        _line("33011019800709001Z", 300, 446, 740, 480),
    ]
    assert fields.parse("face", lines) == {
        "name": "张三丰",
        "sex": "男",
        "nationality": "汉",
        "birth": "19800709",
        "address": "浙江省杭州市余杭区文一西路969号",
        "num": "330110198007090012",
    }


@pytest.mark.parametrize(
    ("birth_text", "sex_text", "birth", "nationality"),
    [
        ("1980 年 7 月 9 日", "性别男民族汉", "19800709", "汉"),
        ("19803年7月9日", "性别男民族漢", "19800709", "汉"),  # a stray digit; 漢 is 汉 as the card prints it
        ("1980年7月9", "性别男民族汉", "19800709", "汉"),  # 日 lost: the number says the same
        ("2013年05月06日", "性别男民族汉", "20130506", "汉"),  # disagreeing with the number: as printed
        ("19 年 月 日", "性别男民族汉", "", "汉"),  # not read
    ],
)
def test_birth_and_nationality(birth_text, sex_text, birth, nationality):
    lines = [
        _line(sex_text, 56, 158, 380, 192),
        _line(birth_text, 150, 220, 460, 252),
        _line("330110198007090012", 300, 446, 740, 480),
    ]
    read = fields.parse("face", lines)
    assert (read["birth"], read["nationality"], read["sex"]) == (birth, nationality, "男")


@pytest.mark.parametrize(
    ("issue_text", "validity_text", "read"),
    [
        (
            "签发机关 杭州市公安局余杭分局",
            "有效期限 2015.03.01-2035.03.01",
            ("杭州市公安局余杭分局", "20150301", "20350301"),
        ),
        (
            "签发机关厦内市公安局思明分局",
            "有效期限2010.01.01-长期",
            ("厦门市公安局思明分局", "20100101", "长期"),
        ),
        ("签发机关内江市公安局", "有效期限", ("内江市公安局", "", "")),  # 内江 is a city
    ],
)
def test_back_fields(issue_text, validity_text, read):
    lines = [_line(issue_text, 200, 398, 700, 428), _line(validity_text, 200, 460, 700, 490)]
    assert fields.parse("back", lines) == dict(zip(fields.BACK_FIELDS, read, strict=True))


# ---- drawn cards ------------------------------------------------------------------------------


def _corner_error(card: idcard.CardReading, truth: Specimen) -> float:
    """The farthest corner from the truth, as a share of the card's diagonal."""
    top_left, bottom_left, bottom_right, top_right = ((p["x"], p["y"]) for p in card.card_region)
    found = (top_left, top_right, bottom_right, bottom_left)
    return max(math.dist(a, b) for a, b in zip(found, truth.corners, strict=True)) / truth.diagonal


def _inside(point: dict, polygon: list[tuple[float, float]]) -> bool:
    return cv2.pointPolygonTest(np.array(polygon, np.float32), (point["x"], point["y"]), False) >= 0


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("side", "seed"), [("face", 101), ("back", 102), ("face", 103)])
def test_drawn_card(read_lines, variant, side, seed):
    truth = specimen(seed, side, variant)
    card = idcard.read(truth.image, side, read_lines)
    assert card.fields == truth.fields
    assert card.success is True
    assert _corner_error(card, truth) < 0.05
    assert card.rotation == ROTATIONS[variant]
    (x0, y0), (x1, y1) = truth.corners[:2]
    lying = math.degrees(math.atan2(y1 - y0, x1 - x0))
    assert abs((card.rotation + card.skew + lying + 180) % 360 - 180) < 1.0
    answer = card.answer()
    assert set(answer) == (FACE_KEYS if side == "face" else BACK_KEYS)
    assert answer["success"] is True
    number_or_issue = truth.fields["num"] if side == "face" else truth.fields["issue"]
    assert number_or_issue in card.text.replace(" ", "")
    card_polygon = truth.corners
    assert all(_inside({"x": x, "y": y}, card_polygon) for line in card.lines for x, y in line.box)
    if side == "face":
        assert _inside(card.face_rect["center"], truth.face)
        assert len(card.face_rect_vertices) == 4
        assert all(_inside(vertex, card_polygon) for vertex in card.face_rect_vertices)
        assert abs((card.face_rect["angle"] - lying + 180) % 360 - 180) < 1.0
    else:
        assert card.face_rect is None
        assert card.face_rect_vertices == []


def test_an_upright_face_is_read_once(read_lines):
    """The face detector says which way up: one OCR call, not one per way."""
    truth = specimen(104, "face", "turned180")
    before = read_lines.calls
    card = idcard.read(truth.image, "face", read_lines)
    assert card.fields == truth.fields
    assert read_lines.calls - before == 1


def _blank(truth: Specimen, box: tuple[float, float, float, float]) -> Image.Image:
    """The plain specimen with a box of the canonical card (856 x 540) painted over in the
    card's own colour near it."""
    image = truth.image.copy()
    scale = image.width / 856
    left, top, right, bottom = (value * scale for value in box)
    colour = image.getpixel((round(left - 4 * scale), round(top)))
    ImageDraw.Draw(image).rectangle((left, top, right, bottom), fill=colour)
    return image


@pytest.mark.parametrize(
    ("side", "box", "missing"),
    [
        ("face", (280, 435, 856, 495), ("num",)),
        ("face", (140, 85, 540, 130), ("name",)),
        ("back", (320, 450, 856, 500), ("start_date", "end_date")),
    ],
)
def test_an_unreadable_field_is_empty_and_not_a_success(read_lines, side, box, missing):
    truth = specimen(105, side, "plain")
    card = idcard.read(_blank(truth, box), side, read_lines)
    assert card.fields == {name: "" if name in missing else value for name, value in truth.fields.items()}
    assert card.success is False
    assert card.answer()["success"] is False


@pytest.mark.parametrize("side", idcard.SIDES)
@pytest.mark.parametrize(
    "image",
    [
        pytest.param(render(english_lines(12, seed=3)), id="page-of-text"),
        pytest.param(Image.new("RGB", (1000, 650), "white"), id="blank"),
        pytest.param(Image.new("RGB", (12, 9), "gray"), id="tiny"),
        pytest.param(Image.new("L", (400, 300), 30), id="grey-mode"),
    ],
)
def test_not_a_card(read_lines, image, side):
    card = idcard.read(image, side, read_lines)
    assert card.success is False
    assert set(card.fields) == set(fields.FACE_FIELDS if side == "face" else fields.BACK_FIELDS)
    assert card.fields["num" if side == "face" else "start_date"] == ""
    assert len(card.card_region) == 4


def test_unknown_side():
    with pytest.raises(ValueError, match="side"):
        idcard.read(Image.new("RGB", (856, 540), "white"), "front", lambda image: [])


def test_corpus_specimen_upside_down(read_lines):
    """The real specimen card, stored upside down: its fields as printed; not a success, since
    its number's check character is wrong (7, where MOD 11-2 gives 9) and its printed birth
    date (2013) and sex (男) disagree with the number (1989, 女)."""
    entry = corpus.entry(CORPUS_CARD)
    image = Image.open(io.BytesIO(corpus.data(CORPUS_CARD)))
    card = idcard.read(image, "face", read_lines)
    truth = entry["truth_fields"]
    assert card.fields == {
        "name": truth["姓名"],
        "sex": truth["性别"],
        "nationality": truth["民族"],
        "birth": truth["出生年月"].replace("-", ""),
        "address": truth["身份证地址"],
        "num": truth["身份证号码"],
    }
    assert card.rotation == entry["rotated_deg"]
    assert card.success is False
    assert not number.is_valid(card.fields["num"])
    # the card fills the picture: its corners are the picture's, the upright top-left at the bottom-right
    top_left = card.card_region[0]
    assert top_left["x"] > 0.95 * image.width
    assert top_left["y"] > 0.95 * image.height
