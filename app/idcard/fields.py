"""The fields of an upright card from its lines (in the canonical card's pixels, region.WIDTH x
region.HEIGHT): by their printed labels first, by where the layout prints them when a label is
misread. A field that is not there reads "" (never a guess); the number corrects only what it
can prove (number.correct), and fills the printed birth date or sex only where what was read of
them agrees with it.

Face: 姓名 性别 民族 出生 住址 (one to three lines) and 公民身份号码 at the foot, the photo at
the right. Back: the title, then 签发机关 and 有效期限 (YYYY.MM.DD-YYYY.MM.DD or ...-长期).
"""

import re
import statistics
from dataclasses import dataclass

from app.engines.base import Line
from app.idcard import number
from app.idcard.region import HEIGHT, WIDTH

FACE_FIELDS = ("name", "sex", "nationality", "birth", "address", "num")
BACK_FIELDS = ("issue", "start_date", "end_date")
LONG_TERM = "长期"
# The 56 nationalities (民族) as the card prints them, longest first so 土家 wins over 土.
NATIONALITIES = tuple(
    sorted(
        "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 "
        "傈僳 佤 畲 高山 拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 "
        "毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 "
        "塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺".split(),
        key=len,
        reverse=True,
    )
)
# Where the layout puts each row's centre, as a fraction of the card's height, and the value
# column's left edge as a fraction of its width (the labels stand left of it).
FACE_ROWS = {"name": 0.20, "sex": 0.325, "birth": 0.437, "address": 0.55, "num": 0.857}
BACK_ROWS = {"issue": 0.765, "validity": 0.88}
FACE_VALUES_X = 0.165  # the face side's labels end here
BACK_VALUES_X = 0.385
PHOTO_LEFT = 0.60  # face side: text right of this is not the address
ADDRESS_BOTTOM = 0.74  # the address's lines end above the number's row
# Traditional forms the recognizer gives for characters the card prints simplified (漢 for 汉,
# 門 for 门): the same characters, so read as the card prints them.
_TRADITIONAL = (
    "漢廈門內區號東華國長陽龍園單棟灣莊橋蘇廣縣鄉鎮層樓車頭寧遼貴雲陝肅維爾臺濟鄭粵閩贛滬瀋進興設豐勝與學場館廠關機發簽"
    "滿壯鮮薩達納頗錫烏別羅溫獨倫諾鳳義紅飛麗靜強軍濤傑豔輝鵬軒曉蘭陳楊黃趙吳劉張孫馬許鄧馮蕭葉呂盧鍾譚陸賈韋鄒閆賀顧龔"
    "萬錢嚴湯歐諸衛寶齊貢雙優傳護"
)
_SIMPLIFIED = (
    "汉厦门内区号东华国长阳龙园单栋湾庄桥苏广县乡镇层楼车头宁辽贵云陕肃维尔台济郑粤闽赣沪沈进兴设丰胜与学场馆厂关机发签"
    "满壮鲜萨达纳颇锡乌别罗温独伦诺凤义红飞丽静强军涛杰艳辉鹏轩晓兰陈杨黄赵吴刘张孙马许邓冯萧叶吕卢钟谭陆贾韦邹闫贺顾龚"
    "万钱严汤欧诸卫宝齐贡双优传护"
)
SIMPLIFIED = str.maketrans(_TRADITIONAL, _SIMPLIFIED)
# RapidOCR reads the 门 of a city's name as 内 (厦门市 -> 厦内市, on most drawn cards). No city's
# name has 内 before 市 (内江市 begins with it), so these are read as the cities they are.
MISREAD_PLACES = {
    "厦内市": "厦门市",
    "江内市": "江门市",
    "荆内市": "荆门市",
    "天内市": "天门市",
    "玉内市": "玉门市",
    "三内峡": "三门峡",
    "内头沟": "门头沟",
}
LABELS = {
    "name": "姓名",
    "sex": "性别",
    "nationality": "民族",
    "birth": "出生",
    "address": "住址",
    "num": "公民身份号码",
    "issue": "签发机关",
    "validity": "有效期限",
}


SEPARATORS = ":：;；,，.。、·"  # what a recognizer may read between a label and its value
# What makes a reading a card's: at least MIN_EVIDENCE of its side's printed words (labels, and
# the back's title) found, or on the face a valid number. Without it, every field is "": the
# fallback by place would otherwise read any page's first line as a name.
EVIDENCE = {
    "face": ("姓名", "性别", "民族", "出生", "住址", "公民身份号码"),
    "back": ("中华人民共和国", "居民身份证", "签发机关", "有效期限"),
}
MIN_EVIDENCE = 2


@dataclass(frozen=True)
class Row:
    """Lines whose centres lie at one height, left to right."""

    lines: tuple[Line, ...]

    @property
    def top(self) -> float:
        return min(min(y for _, y in line.box) for line in self.lines)

    @property
    def bottom(self) -> float:
        return max(max(y for _, y in line.box) for line in self.lines)

    @property
    def middle(self) -> float:
        return statistics.fmean(_middle(line)[1] for line in self.lines)

    def text(self, *, left: float = 0.0, right: float = WIDTH) -> str:
        """The row's text (spaces dropped) from lines centred between left and right."""
        return "".join(_squash(line.text) for line in self.lines if left <= _middle(line)[0] < right)


def _middle(line: Line) -> tuple[float, float]:
    xs, ys = [x for x, _ in line.box], [y for _, y in line.box]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def _height(line: Line) -> float:
    ys = [y for _, y in line.box]
    return max(ys) - min(ys)


def _squash(text: str) -> str:
    return re.sub(r"\s", "", text).translate(SIMPLIFIED)


def rows(lines: list[Line]) -> list[Row]:
    """Lines grouped into rows (centres within half a line's height), top to bottom."""
    ordered = sorted(lines, key=lambda line: _middle(line)[1])
    grouped: list[list[Line]] = []
    for line in ordered:
        if grouped:
            last = grouped[-1]
            reach = 0.5 * max(statistics.median(_height(other) for other in last), _height(line))
            if abs(_middle(line)[1] - statistics.fmean(_middle(other)[1] for other in last)) <= reach:
                last.append(line)
                continue
        grouped.append([line])
    return [Row(tuple(sorted(group, key=lambda line: _middle(line)[0]))) for group in grouped]


def reading_order(lines: list[Line]) -> list[Line]:
    return [line for row in rows(lines) for line in row.lines]


def _strip_label(text: str, label: str) -> tuple[str, bool]:
    """The text after `label` when it starts with the label, or with most of its characters
    (a misread label: 住扯, 签发机美); (text, False) when it does not."""
    if text.startswith(label):
        return text[len(label) :].lstrip(SEPARATORS), True
    head = text[: len(label)]
    if len(label) >= 2 and sum(char in label for char in head) >= max(1, len(label) - 1):
        return text[len(label) :].lstrip(SEPARATORS), True
    return text, False


def _find_row(found: list[Row], label: str, middle: float, *, left: float = 0.0) -> tuple[Row | None, bool]:
    """The row printed with `label` (its text starting with it), or else the row nearest to
    where the layout prints it (`middle`, a fraction of the height), within a row's height."""
    for row in found:
        if _strip_label(row.text(left=left), label)[1]:
            return row, True
    target = middle * HEIGHT
    near = [row for row in found if abs(row.middle - target) <= 0.06 * HEIGHT]
    if not near:
        return None, False
    return min(near, key=lambda row: abs(row.middle - target)), False


def _value(row: Row | None, label: str, *, left: float) -> str:
    """A row's text after its label (label lines and a label merged into the value)."""
    if row is None:
        return ""
    text, _ = _strip_label(row.text(left=left), label)
    return text


def parse(side: str, lines: list[Line]) -> dict[str, str]:
    found = [row for row in rows(lines) if row.text()]
    fields = _parse_face(found) if side == "face" else _parse_back(found)
    if not _is_card(side, found, fields):
        return dict.fromkeys(fields, "")
    return fields


def _is_card(side: str, found: list[Row], fields: dict[str, str]) -> bool:
    if side == "face" and number.is_valid(fields["num"]):
        return True
    texts = [row.text() for row in found]
    seen = sum(any(word in text or _strip_label(text, word)[1] for text in texts) for word in EVIDENCE[side])
    return seen >= MIN_EVIDENCE


def _parse_face(found: list[Row]) -> dict[str, str]:
    fields = dict.fromkeys(FACE_FIELDS, "")
    name_row, _ = _find_row(found, LABELS["name"], FACE_ROWS["name"])
    fields["name"] = _name(_value(name_row, LABELS["name"], left=0))

    sex_row, _ = _find_row(found, LABELS["sex"], FACE_ROWS["sex"])
    sex_text = _value(sex_row, LABELS["sex"], left=0)
    fields["sex"], fields["nationality"] = _sex_and_nationality(sex_text)

    birth_row, _ = _find_row(found, LABELS["birth"], FACE_ROWS["birth"])
    birth_digits = _birth_digits(_value(birth_row, LABELS["birth"], left=0))

    num_row, _ = _find_row(found, LABELS["num"], FACE_ROWS["num"])
    if num_row is None or not number.find(num_row.text()):
        num_row = next((row for row in reversed(found) if number.find(row.text())), None)
    fields["num"] = number.find(_value(num_row, LABELS["num"], left=0)) if num_row else ""

    fields["address"] = _places(_address(found, birth_row, num_row))
    fields["birth"] = _birth(birth_digits, fields["num"], _value(birth_row, LABELS["birth"], left=0))
    if fields["sex"] not in ("男", "女") and sex_text and number.is_valid(fields["num"]):
        fields["sex"] = number.sex(fields["num"])  # the printed one misread: the number's says it
    return fields


def _name(text: str) -> str:
    return re.sub(r"[^\u3400-\u9fff·•A-Za-z]", "", text).replace("•", "·")


def _sex_and_nationality(text: str) -> tuple[str, str]:
    """性别男民族汉 (the labels may be misread): the sex is the first 男/女, the nationality what
    follows 民族 (or the last two characters' label), checked against the 56."""
    sex = next((char for char in text[:3] if char in "男女"), "")
    rest = text[text.index(sex) + 1 :] if sex else text[1:]
    nationality = ""
    for label in (LABELS["nationality"], "族", "民"):
        if label in rest:
            nationality = rest[rest.index(label) + len(label) :]
            break
    else:
        nationality = rest[2:] if len(rest) > 2 else ""
    nationality = re.sub(r"[^\u3400-\u9fff]", "", nationality)
    if nationality not in NATIONALITIES:
        matches = [known for known in NATIONALITIES if nationality.endswith(known)]
        nationality = matches[0] if matches and len(nationality) - len(matches[0]) <= 1 else nationality
    return sex, nationality


def _birth_digits(text: str) -> list[str]:
    """[year, month, day] as read from 1989年8月13日 (年月日 may be misread or dropped)."""
    text = text.translate(number.LOOKALIKES)
    groups = re.findall(r"\d+", text)
    if len(groups) == 1 and len(groups[0]) in (6, 7, 8):  # the 年 月 read as nothing
        digits = groups[0]
        return [digits[:4], digits[4:6], digits[6:]] if len(digits) == 8 else [digits[:4]]
    return groups[:3]


def _birth(digits: list[str], num: str, text: str) -> str:
    """YYYYMMDD: the number's when what was printed reads as its year, month and day in turn
    (whatever else was read between: 1958 3年10月28日); else as printed, when that is a date."""
    if number.is_valid(num):
        year, month, day = number.birth(num)[:4], int(number.birth(num)[4:6]), int(number.birth(num)[6:])
        pattern = rf"{year}\D*?\d*?\D*?0?{month}\D+0?{day}(\D|$)"
        if re.search(pattern, text.translate(number.LOOKALIKES)):
            return number.birth(num)
    if len(digits) == 3 and len(digits[0]) == 4 and all(1 <= len(part) <= 2 for part in digits[1:]):
        printed = f"{digits[0]}{int(digits[1]):02d}{int(digits[2]):02d}"
        if number.is_date(printed):
            return printed
    return ""


def _places(text: str) -> str:
    for misread, place in MISREAD_PLACES.items():
        text = text.replace(misread, place)
    return text


def _address(found: list[Row], birth_row: Row | None, num_row: Row | None) -> str:
    """The lines from 住址 down to above the number, left of the photo."""
    start_row, labelled = _find_row(found, LABELS["address"], FACE_ROWS["address"])
    if start_row is None:
        return ""
    top = start_row.top - 2 if labelled or birth_row is None else max(start_row.top, birth_row.bottom) - 2
    bottom = min(num_row.top, ADDRESS_BOTTOM * HEIGHT) if num_row else ADDRESS_BOTTOM * HEIGHT
    parts = []
    for row in found:
        if row is birth_row or row is num_row or row.middle < top or row.middle > bottom:
            continue
        text = row.text(right=PHOTO_LEFT * WIDTH)
        if row is start_row:
            text = _strip_label(text, LABELS["address"])[0]
        parts.append(text)
    return "".join(parts)


def _parse_back(found: list[Row]) -> dict[str, str]:
    fields = dict.fromkeys(BACK_FIELDS, "")
    issue_row, _ = _find_row(found, LABELS["issue"], BACK_ROWS["issue"])
    validity_row, _ = _find_row(found, LABELS["validity"], BACK_ROWS["validity"])
    if issue_row is validity_row:
        validity_row = None
    if issue_row is not None:
        parts = [_value(issue_row, LABELS["issue"], left=0)]
        # a long issuer wraps: rows between it and the validity, in the value column
        bottom = validity_row.top if validity_row else HEIGHT
        parts += [
            row.text(left=BACK_VALUES_X * WIDTH * 0.9)
            for row in found
            if issue_row.bottom <= row.middle < bottom and row is not issue_row
        ]
        fields["issue"] = _places(re.sub(r"[^\u3400-\u9fff0-9A-Za-z（）()]", "", "".join(parts)))
    if validity_row is not None:
        fields["start_date"], fields["end_date"] = _validity(_value(validity_row, LABELS["validity"], left=0))
    return fields


def _validity(text: str) -> tuple[str, str]:
    """(start, end) of 2015.03.01-2035.03.01 or 2010.01.01-长期; "" for a date not read."""
    long_term = "长" in text or "期" in text
    digits = re.sub(r"\D", "", re.sub(r"[长期].*", "", text).translate(number.LOOKALIKES))
    start = digits[:8] if len(digits) >= 8 and number.is_date(digits[:8], earliest=1984) else ""
    if long_term:
        return start, LONG_TERM
    end = digits[8:16] if len(digits) == 16 and _is_day(digits[8:16]) else ""
    return start, end


def _is_day(text: str) -> bool:
    """A calendar day, past or future (an expiry date)."""
    import datetime

    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def success(side: str, fields: dict[str, str]) -> bool:
    """Every field read, and the ones with rules hold: the number valid and agreeing with the
    printed birth date and sex, a known nationality; the validity's dates in order."""
    if not all(fields.values()):
        return False
    if side == "face":
        return (
            number.agrees(fields["num"], fields["birth"], fields["sex"])
            and fields["nationality"] in NATIONALITIES
        )
    return fields["end_date"] == LONG_TERM or fields["end_date"] > fields["start_date"]


def score(side: str, fields: dict[str, str]) -> int:
    """How much of a card a reading found (to choose between two readings of it)."""
    found = sum(bool(value) for value in fields.values())
    if side == "face":
        return found + 3 * number.is_valid(fields["num"]) + 3 * success(side, fields)
    return found + 3 * success(side, fields)
