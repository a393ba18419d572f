"""Chinese resident ID cards drawn in code, in the real card's layout, with fake holders made
from a seed: names, nationalities, real-looking addresses and numbers with valid check digits.
The photo is scikit-image's bundled `astronaut`, cropped to her head and shoulders.

`specimen(seed, side, variant)` draws one and says what is on it (`Specimen`): the fields, the
card's corners in the image (top-left, top-right, bottom-right, bottom-left of the upright
card) and the face's box (its corners, likewise). Variants:
- plain: the card alone, the image its bounds;
- photo: pasted, turned a few degrees, into a larger photo (scikit-image's `coffee`, scaled up);
- turned90 / turned180 / turned270: on a plain desk, turned by a quarter turn (clockwise) plus
  a few degrees either way;
- jpeg: on the photo, turned a few degrees, saved as JPEG at quality 75.
"""

import datetime
import io
import math
import random
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.idcard import number

WIDTH, HEIGHT = 856, 540  # drawn at 10 px a millimetre, like app/idcard's canonical card
FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
)
LABEL_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
VARIANTS = ("plain", "photo", "turned90", "turned180", "turned270", "jpeg")
LABEL = (40, 130, 190)
INK = (25, 25, 25)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
DOUBLE_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫")
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉萍辉鹏飞丹玲婷宇浩然子涵梓轩欣怡雨晨思远嘉俊博文佳琪晓东海燕春梅冬雪秋菊振华德明永福立新金龙文静雅琴"  # noqa: E501
OTHER_NATIONALITIES = (
    "回",
    "满",
    "壮",
    "蒙古",
    "维吾尔",
    "苗",
    "彝",
    "土家",
    "藏",
    "朝鲜",
    "侗",
    "瑶",
    "白",
    "哈尼",
)
# (province, prefecture city or "" for a municipality, district, GB/T 2260 code)
PLACES = (
    ("北京市", "", "朝阳区", "110105"),
    ("北京市", "", "海淀区", "110108"),
    ("天津市", "", "河西区", "120103"),
    ("上海市", "", "浦东新区", "310115"),
    ("上海市", "", "徐汇区", "310104"),
    ("重庆市", "", "渝中区", "500103"),
    ("河北省", "石家庄市", "长安区", "130102"),
    ("山西省", "太原市", "小店区", "140105"),
    ("内蒙古自治区", "呼和浩特市", "新城区", "150102"),
    ("辽宁省", "沈阳市", "和平区", "210102"),
    ("吉林省", "长春市", "朝阳区", "220104"),
    ("黑龙江省", "哈尔滨市", "南岗区", "230103"),
    ("江苏省", "南京市", "鼓楼区", "320106"),
    ("江苏省", "苏州市", "姑苏区", "320508"),
    ("浙江省", "杭州市", "余杭区", "330110"),
    ("浙江省", "宁波市", "鄞州区", "330212"),
    ("安徽省", "合肥市", "蜀山区", "340104"),
    ("福建省", "厦门市", "思明区", "350203"),
    ("江西省", "南昌市", "东湖区", "360102"),
    ("山东省", "济南市", "历下区", "370102"),
    ("山东省", "青岛市", "市南区", "370202"),
    ("河南省", "郑州市", "金水区", "410105"),
    ("湖北省", "武汉市", "洪山区", "420111"),
    ("湖南省", "长沙市", "开福区", "430105"),
    ("广东省", "广州市", "天河区", "440106"),
    ("广东省", "深圳市", "南山区", "440305"),
    ("广西壮族自治区", "南宁市", "青秀区", "450103"),
    ("海南省", "海口市", "龙华区", "460106"),
    ("四川省", "成都市", "武侯区", "510107"),
    ("贵州省", "贵阳市", "南明区", "520102"),
    ("云南省", "昆明市", "五华区", "530102"),
    ("陕西省", "西安市", "雁塔区", "610113"),
    ("甘肃省", "兰州市", "城关区", "620102"),
    ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "650102"),
)
STREETS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "文一西路",
    "和平街",
    "胜利大街",
    "朝阳北路",
    "长江路",
    "黄河大道",
    "新华街",
    "光明巷",
    "学院路",
    "滨江大道",
    "东风路",
    "青年路",
)
ESTATES = ("幸福小区", "阳光花园", "金色家园", "翠苑", "锦绣新村", "世纪城", "和平里", "春晖苑")
TOWNS = ("街道", "镇")


@dataclass(frozen=True)
class Holder:
    name: str
    sex: str
    nationality: str
    birth: str  # YYYYMMDD
    address: str
    num: str
    issue: str
    start_date: str
    end_date: str  # YYYYMMDD or 长期

    def face(self) -> dict[str, str]:
        return {
            "name": self.name,
            "sex": self.sex,
            "nationality": self.nationality,
            "birth": self.birth,
            "address": self.address,
            "num": self.num,
        }

    def back(self) -> dict[str, str]:
        return {"issue": self.issue, "start_date": self.start_date, "end_date": self.end_date}


@dataclass(frozen=True)
class Specimen:
    image: Image.Image
    fields: dict[str, str]
    corners: list[tuple[float, float]]  # TL, TR, BR, BL of the upright card, in image pixels
    face: list[tuple[float, float]] | None  # the face's box likewise (face side), else None
    holder: Holder

    @property
    def diagonal(self) -> float:
        (x0, y0), _, (x2, y2), _ = self.corners
        return math.hypot(x2 - x0, y2 - y0)


def holder(seed: int) -> Holder:
    """A fake holder: the number's region, birth date and sex digit agree with the card's."""
    rng = random.Random(seed)
    surname = rng.choice(DOUBLE_SURNAMES) if rng.random() < 0.06 else rng.choice(SURNAMES)
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    sex = rng.choice("男女")
    nationality = "汉" if rng.random() < 0.6 else rng.choice(OTHER_NATIONALITIES)
    born = datetime.date(1945, 1, 1) + datetime.timedelta(days=rng.randrange(365 * 62))
    province, city, district, code = rng.choice(PLACES)
    address = province + city + district + _street(rng)
    sequence = f"{rng.randrange(100):02d}{rng.choice('13579' if sex == '男' else '02468')}"
    first17 = code + born.strftime("%Y%m%d") + sequence
    start = datetime.date(max(born.year + 16, 2005), 1, 1) + datetime.timedelta(days=rng.randrange(365 * 15))
    start = min(start, datetime.date(2026, 6, 30)).replace(day=min(start.day, 28))
    age = start.year - born.year
    years = 5 if age < 26 else 10 if age < 36 else 20 if age < 46 else 0
    end = start.replace(year=start.year + years).strftime("%Y%m%d") if years else "长期"
    issuer_city = city or province
    return Holder(
        name=surname + given,
        sex=sex,
        nationality=nationality,
        birth=born.strftime("%Y%m%d"),
        address=address,
        num=first17 + number.check_char(first17),
        issue=f"{issuer_city}公安局{district.removesuffix('新区').removesuffix('区')}分局",
        start_date=start.strftime("%Y%m%d"),
        end_date=end,
    )


def _street(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return f"{rng.choice(STREETS)}{rng.randrange(1, 999)}号"
    if kind < 0.8:
        return (
            f"{rng.choice(STREETS)}{rng.randrange(1, 300)}号{rng.choice(ESTATES)}"
            f"{rng.randrange(1, 30)}栋{rng.randrange(1, 6)}单元"
            f"{rng.randrange(1, 30)}{rng.randrange(1, 5):02d}室"
        )
    village = rng.choice("东西南北新") + rng.choice("村庄桥湾岗")
    town = rng.choice(("城关", "新华", "清河", "东城")) + rng.choice(TOWNS)
    return f"{town}{village}村{rng.randrange(1, 12)}组{rng.randrange(1, 80)}号"


# ---- drawing --------------------------------------------------------------------------


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _spaced(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, fill, spacing: float
) -> float:
    """Text with extra space between characters (the card spaces its labels and number);
    returns the x after it. `xy` is the left end of the text's middle line."""
    x, y = xy
    for char in text:
        draw.text((x, y), char, font=font, fill=fill, anchor="lm")
        x += font.getlength(char) + spacing
    return x


def _background(rng: random.Random) -> Image.Image:
    """A pale card with a faint guilloche of waves and a tint toward one corner."""
    tint = np.array([rng.randint(228, 246), rng.randint(232, 246), rng.randint(238, 250)], np.float32)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    shade = 1.0 - 0.04 * (xs / WIDTH) - 0.03 * (ys / HEIGHT)
    phase = rng.uniform(0, 6.28)
    waves = 0.5 + 0.5 * np.sin(xs / 23.0 + 6 * np.sin(ys / 41.0 + phase)) * np.sin(ys / 17.0 + xs / 90.0)
    pixels = tint[None, None, :] * shade[:, :, None] - 12 * waves[:, :, None] * np.array([0.6, 0.3, 0.1])
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@cache
def _portrait() -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The astronaut's head and shoulders (220 x 272) and her face's box in it."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    left, top, right, bottom = 110, 20, 330, 292  # face at columns 175-268, rows 70-163
    crop = photo.crop((left, top, right, bottom))
    return crop, (175 - left, 70 - top, 268 - left, 163 - top)


def _wrap(text: str, font, width: float) -> list[str]:
    lines, line = [], ""
    for char in text:
        if line and font.getlength(line + char) > width:
            lines.append(line)
            line = ""
        line += char
    return [*lines, line] if line else lines


def draw_face(person: Holder, rng: random.Random) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The face side at WIDTH x HEIGHT, and the face's box on it."""
    card = _background(rng)
    draw = ImageDraw.Draw(card)
    font_path = rng.choice(FONTS)
    label = _font(LABEL_FONT, 24)
    value = _font(font_path, 30)
    digits = _font(font_path, 33)
    x_label, x_value = 60, 150
    rows = {"name": 108, "sex": 175, "birth": 236, "address": 300, "num": 463}
    _spaced(draw, (x_label, rows["name"]), "姓名", label, LABEL, 18)
    _spaced(draw, (x_value, rows["name"]), person.name, value, INK, 2)
    _spaced(draw, (x_label, rows["sex"]), "性别", label, LABEL, 18)
    _spaced(draw, (x_value, rows["sex"]), person.sex, value, INK, 0)
    _spaced(draw, (255, rows["sex"]), "民族", label, LABEL, 18)
    _spaced(draw, (340, rows["sex"]), person.nationality, value, INK, 2)
    _spaced(draw, (x_label, rows["birth"]), "出生", label, LABEL, 18)
    year, month, day = person.birth[:4], str(int(person.birth[4:6])), str(int(person.birth[6:]))
    x = _spaced(draw, (x_value + 8, rows["birth"]), year, value, INK, 1) + 22
    x = _spaced(draw, (x, rows["birth"]), "年", label, LABEL, 0) + 16
    x = _spaced(draw, (x, rows["birth"]), month, value, INK, 1) + 16
    x = _spaced(draw, (x, rows["birth"]), "月", label, LABEL, 0) + 16
    x = _spaced(draw, (x, rows["birth"]), day, value, INK, 1) + 16
    _spaced(draw, (x, rows["birth"]), "日", label, LABEL, 0)
    _spaced(draw, (x_label, rows["address"]), "住址", label, LABEL, 18)
    for index, part in enumerate(_wrap(person.address, value, 400)[:3]):
        _spaced(draw, (x_value, rows["address"] + 40 * index), part, value, INK, 0)
    _spaced(draw, (x_label, rows["num"]), "公民身份号码", label, LABEL, 3)
    _spaced(draw, (300, rows["num"]), person.num, digits, INK, 5)
    portrait, (fl, ft, fr, fb) = _portrait()
    px, py = 570, 100
    card.paste(portrait, (px, py))
    return card, (px + fl, py + ft, px + fr, py + fb)


def draw_back(person: Holder, rng: random.Random) -> Image.Image:
    card = _background(rng)
    draw = ImageDraw.Draw(card)
    font_path = rng.choice(FONTS)
    # the national emblem's place: a red disc with yellow stars
    draw.ellipse((70, 45, 210, 185), fill=(200, 30, 35))
    _star(draw, (140, 100), 30, (250, 210, 60))
    for angle in (-60, -20, 20, 60):
        _star(
            draw,
            (140 + 48 * math.sin(math.radians(angle)), 100 - 48 * math.cos(math.radians(angle))),
            9,
            (250, 210, 60),
        )
    _spaced(draw, (300, 100), "中华人民共和国", _font(FONTS[2], 40), INK, 14)
    _spaced(draw, (300, 190), "居民身份证", _font(FONTS[2], 58), INK, 24)
    label = _font(LABEL_FONT, 24)
    value = _font(font_path, 28)
    _spaced(draw, (200, 413), "签发机关", label, INK, 6)
    _spaced(draw, (330, 413), person.issue, value, INK, 1)
    _spaced(draw, (200, 475), "有效期限", label, INK, 6)
    start = f"{person.start_date[:4]}.{person.start_date[4:6]}.{person.start_date[6:]}"
    end = (
        person.end_date
        if person.end_date == "长期"
        else (f"{person.end_date[:4]}.{person.end_date[4:6]}.{person.end_date[6:]}")
    )
    _spaced(draw, (330, 475), f"{start}-{end}", value, INK, 1)
    return card


def _star(draw: ImageDraw.ImageDraw, center: tuple[float, float], radius: float, fill) -> None:
    cx, cy = center
    points = []
    for index in range(10):
        r = radius if index % 2 == 0 else radius * 0.4
        angle = math.radians(-90 + 36 * index)
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    draw.polygon(points, fill=fill)


def _rounded(card: Image.Image) -> Image.Image:
    """The card's alpha: rounded corners (3 mm)."""
    mask = Image.new("L", card.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, card.width - 1, card.height - 1), radius=30, fill=255)
    return mask


# ---- placing it in a picture ------------------------------------------------------------


@cache
def _coffee() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.coffee())


def _desk(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A plain darker desk with a little noise."""
    base = np.array([rng.randint(70, 130), rng.randint(60, 110), rng.randint(50, 100)], np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 6, (size[1], size[0], 1))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _place(
    card: Image.Image,
    ground: Image.Image,
    *,
    scale: float,
    angle: float,
    center: tuple[float, float],
    points: list[tuple[float, float]],
) -> tuple[Image.Image, list[tuple[float, float]]]:
    """The card scaled, turned `angle` degrees clockwise and pasted centred at `center` on
    `ground`; and `points` (card pixels) where they land."""
    size = (round(card.width * scale), round(card.height * scale))
    rgba = card.resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    rgba.putalpha(_rounded(card).resize(size, Image.Resampling.LANCZOS))
    turned = rgba.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True)
    left = round(center[0] - turned.width / 2)
    top = round(center[1] - turned.height / 2)
    picture = ground.copy()
    picture.paste(turned, (left, top), turned)
    theta = math.radians(angle)
    moved = []
    for x, y in points:
        dx, dy = x * scale - size[0] / 2, y * scale - size[1] / 2
        moved.append(
            (
                left + turned.width / 2 + dx * math.cos(theta) - dy * math.sin(theta),
                top + turned.height / 2 + dx * math.sin(theta) + dy * math.cos(theta),
            )
        )
    return picture, moved


def specimen(seed: int, side: str = "face", variant: str = "plain") -> Specimen:
    """One side of holder(seed)'s card, drawn as `variant` (see the module's docstring)."""
    if variant not in VARIANTS:
        raise ValueError(variant)
    person = holder(seed)
    rng = random.Random(f"{seed}-{side}-{variant}")
    if side == "face":
        card, (fl, ft, fr, fb) = draw_face(person, rng)
        face_points = [(fl, ft), (fr, ft), (fr, fb), (fl, fb)]
        truth = person.face()
    else:
        card, face_points, truth = draw_back(person, rng), [], person.back()
    corners = [(0.0, 0.0), (WIDTH, 0.0), (WIDTH, HEIGHT), (0.0, HEIGHT)]
    jpeg = variant == "jpeg"
    if variant == "plain":
        scale = rng.uniform(1.0, 1.25)
        ground = Image.new("RGB", (round(WIDTH * scale), round(HEIGHT * scale)), "white")
        image, moved = _place(
            card,
            ground,
            scale=scale,
            angle=0.0,
            center=(ground.width / 2, ground.height / 2),
            points=corners + face_points,
        )
    elif variant in ("photo", "jpeg"):
        ground = _coffee().resize((1500, 1000), Image.Resampling.BICUBIC)
        scale = rng.uniform(0.95, 1.2)
        angle = rng.choice((-1, 1)) * rng.uniform(1.0, 5.0)
        center = (ground.width / 2 + rng.uniform(-100, 100), ground.height / 2 + rng.uniform(-60, 60))
        image, moved = _place(
            card, ground, scale=scale, angle=angle, center=center, points=corners + face_points
        )
    else:
        quarter = int(variant.removeprefix("turned"))
        angle = quarter + rng.choice((-1, 1)) * rng.uniform(1.0, 5.0)
        scale = rng.uniform(0.95, 1.15)
        side_long = round(WIDTH * scale * 1.25)
        ground = _desk(rng, (side_long, side_long))
        image, moved = _place(
            card,
            ground,
            scale=scale,
            angle=angle,
            center=(side_long / 2, side_long / 2),
            points=corners + face_points,
        )
    image = image.filter(ImageFilter.GaussianBlur(0.6))
    if jpeg:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=75)
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    return Specimen(
        image=image,
        fields=truth,
        corners=moved[:4],
        face=moved[4:] or None,
        holder=person,
    )
