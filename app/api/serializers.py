"""Validate requests and shape responses. No OCR and no writes happen here."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from rest_framework import serializers

from app.models import OcrRecord


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

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


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()


class OcrRequestSerializer(serializers.Serializer):
    image = serializers.FileField(
        required=False, allow_empty_file=True, help_text="The image file (multipart)."
    )
    image_base64 = serializers.CharField(
        required=False,
        trim_whitespace=True,
        help_text="The image as base64; a data: URI prefix is allowed.",
    )
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
        help_text="document (Tesseract, RapidOCR) or text (ddddocr captcha).",
    )
    rotate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="RapidOCR: detect and fix upside-down lines (off: it can flip upright text).",
    )

    def validate(self, attrs: dict) -> dict:
        given = [name for name in ("image", "image_base64") if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Send exactly one of 'image' (a file) or 'image_base64'.", code="missing_image"
            )
        return attrs


class LineSerializer(serializers.Serializer):
    text = serializers.CharField()
    box = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        min_length=4,
        max_length=4,
    )
    score = serializers.FloatField(allow_null=True)


class OcrRecordSerializer(serializers.ModelSerializer):
    lines = LineSerializer(many=True)
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = OcrRecord
        fields = [
            "id",
            "engine",
            "lang",
            "task",
            "status",
            "text",
            "lines",
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

    def get_image_url(self, record: OcrRecord) -> str:
        path = reverse("api:history-image", kwargs={"pk": record.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class EngineSerializer(serializers.Serializer):
    name = serializers.CharField()
    available = serializers.BooleanField()
    reason = serializers.CharField()
    version = serializers.CharField()
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
