"""Validate requests and shape responses. No OCR and no writes happen here."""

import copy
import difflib
from collections.abc import Mapping

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.validators import ProhibitSurrogateCharactersValidator
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer

from app.api.parsers import check_field_count
from app.authentication import ChainedRefreshToken
from app.engines.base import PDF_TEXT_SOURCES
from app.engines.ddddocr import MAX_CHARSET, SLIDE_ALGORITHMS
from app.engines.registry import CARD_SIDES
from app.models import ApiKey, OcrRecord


class RejectUnknownFields:
    """A typo (`engin=tesseract`) is a 400 naming the field, never an option silently dropped."""

    extra_fields: tuple[str, ...] = ()  # accepted though not declared (read by the serializer itself)

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            check_field_count(data)  # a form body, too (a JSON one is counted as it is parsed)
            known = [*self.fields, *self.extra_fields]
            unknown = sorted(set(data) - set(known))
            if unknown:
                raise unknown_fields_error(unknown, known)
        return super().to_internal_value(data)


# An error names at most this many unknown fields (and counts the rest), each cut to NAME_SHOWN
# characters: naming 200,000 of them once cost seconds of CPU and a 27 MB answer.
UNKNOWN_NAMED = 5
NAME_SHOWN = 64


def unknown_fields_error(unknown: list[str], known: list[str]) -> serializers.ValidationError:
    """One message per unknown field (the first few), with the likeliest meant one when there is one."""
    messages = {}
    for name in unknown[:UNKNOWN_NAMED]:
        name = str(name)[:NAME_SHOWN]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"the fields are {', '.join(known)}."
        messages[name] = [ErrorDetail(f"Unknown field; {hint}", code="unknown_field")]
    if len(unknown) > UNKNOWN_NAMED:
        first = next(iter(messages))
        more = len(unknown) - UNKNOWN_NAMED
        messages[first] = [
            ErrorDetail(f"{messages[first][0]} (and {more} more unknown fields)", code="unknown_field")
        ]
    return serializers.ValidationError(messages)


def named(names: list[str]) -> str:
    """The first few names, and how many more: for a message that lists the client's keys."""
    shown = ", ".join(str(name)[:NAME_SHOWN] for name in names[:UNKNOWN_NAMED])
    return shown + (f" and {len(names) - UNKNOWN_NAMED} more" if len(names) > UNKNOWN_NAMED else "")


# Every text field a client sends is bounded: a password or token longer than these is no
# password or token, and hashing or parsing a megabyte of one costs real time.
PASSWORD_MAX = 4096
TOKEN_MAX = 8192  # a refresh token here is ~300 characters; longer garbage is still a 401 below this


def password_field() -> serializers.CharField:
    return serializers.CharField(write_only=True, max_length=PASSWORD_MAX, style={"input_type": "password"})


class RegisterSerializer(RejectUnknownFields, serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="", max_length=254)
    password = password_field()

    def validate_username(self, value: str) -> str:
        User = get_user_model()
        User.username_validator(value)
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("That username is taken.", code="username_taken")
        return value

    def validate(self, attrs: dict) -> dict:
        candidate = get_user_model()(username=attrs["username"], email=attrs["email"])
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}, code="weak_password") from exc
        return attrs


class TokenObtainRequestSerializer(RejectUnknownFields, TokenObtainPairSerializer):
    token_class = ChainedRefreshToken  # a login starts a refresh chain (JWT_REFRESH_MAX_DAYS)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)  # simplejwt adds its unbounded fields here
        self.fields[self.username_field] = serializers.CharField(write_only=True, max_length=150)
        self.fields["password"] = password_field()


class TokenRefreshRequestSerializer(RejectUnknownFields, TokenRefreshSerializer):
    token_class = ChainedRefreshToken  # carries the login time; refused past the chain's end
    refresh = serializers.CharField(max_length=TOKEN_MAX)


class TokenLogoutSerializer(RejectUnknownFields, serializers.Serializer):
    refresh = serializers.CharField(max_length=TOKEN_MAX)

    def validate(self, attrs: dict) -> dict:
        # A bad, expired or already blacklisted token raises TokenError: the view makes it a 401.
        return {"token": ChainedRefreshToken(attrs["refresh"])}


class PasswordChangeSerializer(RejectUnknownFields, serializers.Serializer):
    old_password = password_field()
    new_password = password_field()

    def validate_old_password(self, value: str) -> str:
        if not self.context["user"].check_password(value):
            raise serializers.ValidationError("The current password is wrong.", code="wrong_password")
        return value

    def validate(self, attrs: dict) -> dict:
        try:
            validate_password(attrs["new_password"], user=self.context["user"])
        except DjangoValidationError as exc:
            messages = {"new_password": list(exc.messages)}
            raise serializers.ValidationError(messages, code="weak_password") from exc
        return attrs


class TokenPairSerializer(serializers.Serializer):
    refresh = serializers.CharField()
    access = serializers.CharField()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class UsageSerializer(serializers.Serializer):
    """Today's (UTC) stored images and pages against the daily quotas (0: unlimited)."""

    images_today = serializers.IntegerField()
    pages_today = serializers.IntegerField()
    image_quota = serializers.IntegerField()
    page_quota = serializers.IntegerField()
    resets_at = serializers.DateTimeField()


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    # Not an EmailField: registering without an e-mail leaves it empty, and "" is no e-mail address.
    email = serializers.CharField(help_text="The e-mail address given at sign-up, or empty.")


class Base64Field(serializers.CharField):
    """A CharField without DRF's per-character surrogate scan: on a 10 MB image that scan
    costs more than the rest of the request, and app.inputs.read_base64 refuses anything
    that is not base64 anyway. Its bound is the request body's (OCR_MAX_REQUEST_BYTES, in
    app/middleware.py) and the decoded image's (app.inputs.read_base64): both 413s."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitSurrogateCharactersValidator)
        ]


def bounded_charset(value: str) -> None:
    """charset's bound, with the code ddddocr's own check gives (app/engines/ddddocr.py)."""
    if len(value) > MAX_CHARSET:
        raise serializers.ValidationError(
            f"charset is longer than {MAX_CHARSET} characters.", code="invalid_charset"
        )


class ExportRequestSerializer(serializers.Serializer):
    """?format= of the history export. The other parameters are the list's filters."""

    format = serializers.ChoiceField(choices=["csv", "jsonl"], default="csv")


IMAGE_FIELDS = ("image", "image_base64", "image_url")
FORMATS = ("json", "text", "hocr", "tsv")
QUERY_FIELDS = {"format": "format", "async": "queue", "force": "force"}


class EngineChoiceSerializer(RejectUnknownFields, serializers.Serializer):
    """Which engine reads the images, in what language, for what task: shared by every
    request that runs OCR."""

    engine = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=32,
        help_text="tesseract, rapidocr, ddddocr or auto (the server's default).",
    )
    lang = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        help_text="Tesseract language codes joined by '+', e.g. eng, chi_sim, eng+chi_sim.",
    )
    task = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=32,
        help_text="document (Tesseract, RapidOCR); RapidOCR: idcard (a Chinese resident ID card's "
        "fields, see `side`) or line (the whole image read as one line); ddddocr captchas: text, "
        "math (solve `3+8=?`) or detect (boxes of characters and icons); zxing: barcode (barcodes "
        "and QR codes: each one's payload as a line, see `barcodes`; 422 no_barcode when there is none).",
    )
    pdf_text = serializers.ChoiceField(
        choices=PDF_TEXT_SOURCES,
        required=False,
        default="auto",
        help_text="A PDF page's own text: auto reads it where the page has a usable text layer "
        "(born-digital) and recognizes the other pages; layer reads only the text layers (a page "
        "without one is empty); ocr recognizes every page. Each page says which it was "
        "(`pages[].text_source`). Images ignore it.",
    )


class OcrRequestSerializer(EngineChoiceSerializer):
    extra_fields = ("async",)  # `queue` under its query-string name
    image = serializers.FileField(
        required=False, allow_empty_file=True, help_text="The image file (multipart)."
    )
    image_base64 = Base64Field(
        required=False, help_text="The image as base64; a data: URI prefix is allowed."
    )
    image_url = serializers.CharField(
        required=False,
        max_length=2048,
        help_text="An http(s) URL to fetch the image from (public addresses only).",
    )
    rotate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="RapidOCR: detect and fix upside-down lines (off: it can flip upright text). "
        "Refused (unsupported_option) with other engines.",
    )
    charset = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        validators=[bounded_charset],
        help_text=f"ddddocr task=text: the characters the answer may contain (at most {MAX_CHARSET}), "
        "or a preset: 0 digits, 1 a-z, 2 A-Z, 3 a-zA-Z, 4 a-z0-9, 5 A-Z0-9, 6 a-zA-Z0-9, "
        "7 anything but letters and digits. Refused (unsupported_option) with other engines and tasks.",
    )
    side = serializers.ChoiceField(
        choices=CARD_SIDES,
        required=False,
        default="",
        help_text="task=idcard: face (name, sex, nationality, birth, address, number; the default) "
        "or back (issuer, validity).",
    )
    upright = serializers.BooleanField(
        required=False,
        default=False,
        help_text="task=document: the image is upright and level, so it is read as sent (no "
        "orientation or skew detection).",
    )

    queue = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Run as a job and answer 202 at once; follow `url` for progress (also ?async=1).",
    )
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Read the image again even if the same bytes were read the same way before.",
    )
    format = serializers.ChoiceField(
        choices=FORMATS,
        default="json",
        help_text="The response: json (the record), text (text/plain), or Tesseract's hocr or tsv.",
    )

    def to_internal_value(self, data):
        """Cloud-market style: {"image": "<base64 or URL>", "configure": {engine, lang, ...}}."""
        from app.compat import market  # the dialect builds on this module's field errors

        if market.is_market_body(data):
            data = market.from_market_style(data)
        value = super().to_internal_value(data)
        # `async` is a keyword in Python, so the field is `queue`; and the query string
        # (?format=, ?async=, ?force=) wins over the body.
        given = {"async": data["async"]} if isinstance(data, Mapping) and "async" in data else {}
        given.update(self.context.get("query", {}))
        for name, field in QUERY_FIELDS.items():
            if name in given:
                try:
                    value[field] = self.fields[field].run_validation(given[name])
                except serializers.ValidationError as exc:
                    raise serializers.ValidationError({name: exc.detail}) from exc
        return value

    def validate(self, attrs: dict) -> dict:
        given = [name for name in IMAGE_FIELDS if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Send exactly one of 'image' (a file), 'image_base64' or 'image_url'.", code="missing_image"
            )
        return attrs


def box_field(**kwargs) -> serializers.ListField:
    """[x1, y1, x2, y2] in image pixels."""
    return serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4, **kwargs)


class SlideRequestSerializer(RejectUnknownFields, serializers.Serializer):
    target = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="match: the piece; compare: the picture with the gap.",
    )
    target_base64 = Base64Field(required=False, help_text="`target` as base64 (data: URI allowed).")
    background = serializers.FileField(
        required=False, allow_empty_file=True, help_text="The background; compare: without the gap."
    )
    background_base64 = Base64Field(required=False, help_text="`background` as base64 (data: URI allowed).")
    algorithm = serializers.ChoiceField(
        choices=SLIDE_ALGORITHMS,
        default="match",
        help_text="match: find the piece in the background; compare: find where two pictures differ.",
    )
    simple_target = serializers.BooleanField(
        required=False,
        default=False,
        help_text="match: the piece is a plain rectangular crop (match pixels) rather than a shape "
        "on a transparent background (match edges, the default).",
    )

    def validate(self, attrs: dict) -> dict:
        for name in ("target", "background"):
            given = [key for key in (name, f"{name}_base64") if attrs.get(key) is not None]
            if len(given) != 1:
                raise serializers.ValidationError(
                    f"Send exactly one of '{name}' (a file) or '{name}_base64'.", code="missing_image"
                )
        return attrs


class SlideResultSerializer(serializers.Serializer):
    target_x = serializers.IntegerField(help_text="Left edge of the piece's place in the background.")
    target_y = serializers.IntegerField(help_text="Top edge of the piece's place in the background.")
    target = box_field(help_text="The piece's place: [x1, y1, x2, y2].")
    algorithm = serializers.ChoiceField(choices=SLIDE_ALGORITHMS)


class LineSerializer(serializers.Serializer):
    text = serializers.CharField()
    box = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        min_length=4,
        max_length=4,
    )
    score = serializers.FloatField(allow_null=True)
    page = serializers.IntegerField(required=False, help_text="PDFs only: the 1-based page.")


class PageSerializer(serializers.Serializer):
    """A PDF page: its number, rendered size and text (its lines carry `page` too)."""

    page = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    text = serializers.CharField()
    text_source = serializers.ChoiceField(
        choices=["layer", "ocr"],
        required=False,
        help_text="layer: read from the page's own text; ocr: drawn and recognized (records made "
        "before text layers were read have none).",
    )
    rotation = serializers.IntegerField(
        required=False, help_text="ocr pages: degrees clockwise the page was turned to be read upright."
    )
    skew = serializers.FloatField(
        required=False, help_text="ocr pages: degrees it was levelled by after that."
    )


class BlockSerializer(serializers.Serializer):
    """A block of lines (a paragraph, or a table's rows) in reading order."""

    box = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    lines = serializers.ListField(child=serializers.IntegerField(), help_text="indexes into `lines`")
    kind = serializers.ChoiceField(choices=["text", "table"])
    page = serializers.IntegerField(required=False, help_text="PDFs: the page it is on")


class FieldsBuiltOnce:
    """For read-only output serializers: build the fields once per class, not per instance.

    DRF deep-copies every declared field and introspects the model for each serializer it
    makes: for a record that was ~2.5 ms of every OCR answer, more than the rest of the
    request path around a 12 ms captcha read (bench/overhead.py). Each instance gets shallow
    copies of the built fields, which it binds to itself as usual."""

    def get_fields(self):
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built
        return {name: copy.copy(field) for name, field in built.items()}


class BarcodeSerializer(serializers.Serializer):
    """task=barcode: one symbol found (its payload is also a line of `lines`)."""

    format = serializers.CharField(
        help_text="zxing-cpp's name of the symbology: QR Code, EAN-13, Code 128, ..."
    )
    text = serializers.CharField(
        help_text="The payload, as text (binary payloads escaped as zxing-cpp's HRI)."
    )
    content_type = serializers.CharField(help_text="text, binary, mixed, gs1, iso15434 or unknowneci.")
    box = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="The symbol's four corners [x, y], from its own top-left, in the image's pixels.",
    )
    orientation = serializers.IntegerField(help_text="Degrees the symbol is turned, as zxing-cpp reports it.")
    page = serializers.IntegerField(required=False, help_text="PDFs: the 1-based page it is on.")


class OcrRecordSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    lines = LineSerializer(many=True)
    result = serializers.SerializerMethodField()
    idcard = serializers.SerializerMethodField()
    boxes = serializers.SerializerMethodField()
    barcodes = serializers.SerializerMethodField()
    pages = serializers.SerializerMethodField()
    blocks = serializers.SerializerMethodField()
    rotation = serializers.SerializerMethodField()
    skew = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    cached = serializers.SerializerMethodField()

    class Meta:
        model = OcrRecord
        fields = [
            "id",
            "url",
            "engine",
            "lang",
            "task",
            "status",
            "cached",
            "pages_done",
            "pages_total",
            "batch",
            "text",
            "lines",
            "result",
            "idcard",
            "boxes",
            "barcodes",
            "pages",
            "blocks",
            "rotation",
            "skew",
            "error",
            "width",
            "height",
            "size",
            "duration_ms",
            "sha256",
            "file_name",
            "image_url",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True, help_text="task=math: the answer."))
    def get_result(self, record: OcrRecord) -> int | float | None:
        return record.extra.get("result")

    @extend_schema_field(
        serializers.DictField(
            allow_null=True,
            help_text="task=idcard: the card's fields (face: name, sex, nationality, birth, address, "
            "num, face_rect, face_rect_vertices; back: issue, start_date, end_date), its corners "
            "`card_region`, and `success` (false when a field could not be read: it is empty).",
        )
    )
    def get_idcard(self, record: OcrRecord) -> dict | None:
        return record.extra.get("idcard")

    @extend_schema_field(
        serializers.ListField(
            child=box_field(),
            allow_null=True,
            help_text="task=detect: [x1, y1, x2, y2] of each object found.",
        )
    )
    def get_boxes(self, record: OcrRecord) -> list[list[int]] | None:
        return record.extra.get("boxes")

    @extend_schema_field(BarcodeSerializer(many=True, allow_null=True))
    def get_barcodes(self, record: OcrRecord) -> list[dict] | None:
        return record.extra.get("barcodes")

    @extend_schema_field(PageSerializer(many=True, allow_null=True))
    def get_pages(self, record: OcrRecord) -> list[dict] | None:
        return record.extra.get("pages")

    @extend_schema_field(BlockSerializer(many=True, allow_null=True))
    def get_blocks(self, record: OcrRecord) -> list[dict] | None:
        return record.extra.get("blocks")

    @extend_schema_field(
        serializers.IntegerField(
            allow_null=True,
            help_text="Degrees clockwise the image was turned to be read upright (0, 90, 180, 270); "
            "boxes are in the pixels of the image as sent. PDFs: per page.",
        )
    )
    def get_rotation(self, record: OcrRecord) -> int | None:
        return record.extra.get("rotation")

    @extend_schema_field(
        serializers.FloatField(allow_null=True, help_text="Degrees the image was levelled by after that.")
    )
    def get_skew(self, record: OcrRecord) -> float | None:
        return record.extra.get("skew")

    def get_url(self, record: OcrRecord) -> str | None:
        return self._absolute("api:history-detail", record)

    def get_image_url(self, record: OcrRecord) -> str | None:
        return self._absolute("api:history-image", record)

    def get_cached(self, record: OcrRecord) -> bool:
        """True when an earlier record of the same bytes and options answered this request
        (services.Recognition.reused, handed in as the `reused` context)."""
        return bool(self.context.get("reused", False))

    def _absolute(self, name: str, record: OcrRecord) -> str | None:
        if record.pk is None:  # an anonymous request's result is not stored
            return None
        path = reverse(name, kwargs={"pk": record.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class RuntimeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="e.g. openvino or onnxruntime")
    version = serializers.CharField()


class EngineSerializer(serializers.Serializer):
    name = serializers.CharField()
    available = serializers.BooleanField()
    reason = serializers.CharField()
    version = serializers.CharField()
    runtime = RuntimeSerializer(
        allow_null=True, help_text="The inference runtime running its models (null: none, or unavailable)."
    )
    languages = serializers.ListField(child=serializers.CharField())
    default_lang = serializers.CharField()
    tasks = serializers.ListField(child=serializers.CharField())


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"])
    database = serializers.CharField()
    engines = serializers.DictField(child=serializers.BooleanField())


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "active", "usage_count", "last_used_at", "created_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(RejectUnknownFields, serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.SerializerMethodField(help_text="The key itself: shown this once, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields

    def get_key(self, api_key: ApiKey) -> str:
        return self.context["plain_key"]


class BatchRequestSerializer(EngineChoiceSerializer):
    images = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        default=list,
        help_text="The files.",
    )
    archive = serializers.FileField(
        required=False, help_text="A zip of images and PDFs (folders are walked)."
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs["images"] and attrs.get("archive") is None:
            raise serializers.ValidationError(
                "Send files as `images`, a zip as `archive`, or both.", code="missing_image"
            )
        return attrs


class BatchRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = OcrRecord
        fields = ["id", "file_name", "status", "pages_done", "pages_total", "error"]
        read_only_fields = fields


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    total = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    progress = serializers.FloatField(help_text="Finished records (done or failed) over all, 0..1.")
    records = BatchRecordSerializer(many=True)
