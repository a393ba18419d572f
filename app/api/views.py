"""Thin API views: validate, call a service or selector, shape the response."""

from django.contrib.auth import update_session_auth_hash
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from app import export, inputs, media, selectors, services
from app.api.filters import (
    HistoryFilter,
    HistoryFilterBackend,
    HistoryOrderingFilter,
    HistorySearchFilter,
    history_arguments,
)
from app.api.parsers import FormOrJSONParser, JSONParser
from app.api.rendering import CONTENT_TYPES, rendered_result
from app.api.serializers import (
    FORMATS,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    BatchRequestSerializer,
    BatchSerializer,
    DetailSerializer,
    EngineSerializer,
    ErrorSerializer,
    ExportRequestSerializer,
    HealthSerializer,
    OcrRecordSerializer,
    OcrRequestSerializer,
    PasswordChangeSerializer,
    RegisterSerializer,
    SlideRequestSerializer,
    SlideResultSerializer,
    TokenLogoutSerializer,
    TokenObtainRequestSerializer,
    TokenPairSerializer,
    TokenRefreshRequestSerializer,
    UsageSerializer,
    UserSerializer,
)
from app.authentication import ChainedRefreshToken
from app.compat import market
from app.models import ApiKey, OcrRecord
from app.throttles import OCR_THROTTLES, SignInRateThrottle, usage_today

# ?format= of the history export: the line writer and the content type.
EXPORT_FORMATS = {
    "csv": (export.csv_lines, "text/csv; charset=utf-8"),
    "jsonl": (export.json_lines, "application/x-ndjson; charset=utf-8"),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation can really give (all in the one error envelope), so the
    schema documents every status a client may see; app/tests/test_fuzz.py holds it to that."""
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


ERRORS = errors(400, 401, 413, 429, 503)  # 429: OCR_USER_THROTTLE or a daily quota


def record_or_rendering(status: int, description: str) -> dict:
    """The record as JSON, or with format=text|hocr|tsv its text or Tesseract's rendering."""
    answers = {(status, "application/json"): OpenApiResponse(OcrRecordSerializer, description=description)}
    for content_type in CONTENT_TYPES.values():
        media_type = content_type.split(";")[0]
        answers[(status, media_type)] = OpenApiResponse(OpenApiTypes.STR, description=description)
    return answers


class AuthThrottled:
    """Login, refresh and sign-up share one per-address rate (settings: OCR_AUTH_THROTTLE)."""

    throttle_classes = [SignInRateThrottle]


class RegisterView(AuthThrottled, APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=RegisterSerializer, responses={201: UserSerializer, **errors(400, 429)})
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.register_user(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema_view(post=extend_schema(responses={200: TokenObtainPairSerializer, **errors(400, 401, 429)}))
class TokenObtainView(AuthThrottled, TokenObtainPairView):
    serializer_class = TokenObtainRequestSerializer


@extend_schema_view(post=extend_schema(responses={200: TokenRefreshSerializer, **errors(400, 401, 429)}))
class TokenRefresh(AuthThrottled, TokenRefreshView):
    serializer_class = TokenRefreshRequestSerializer


class TokenLogoutView(AuthThrottled, APIView):
    """The refresh token is its own credential: whoever holds it may end it."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request: Request) -> str:
        # Without an authenticator DRF turns a 401 into a 403; a bad token is a 401 as on /api/token_refresh/.
        return 'Bearer realm="api"'

    @extend_schema(
        request=TokenLogoutSerializer,
        responses={200: DetailSerializer, **errors(400, 401, 429)},
        description="Log out: blacklist the refresh token. Its access tokens live out their minutes.",
    )
    def post(self, request: Request) -> Response:
        serializer = TokenLogoutSerializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        services.log_out(refresh=serializer.validated_data["token"])
        return Response({"detail": "Logged out: the refresh token no longer works."})


def file_or_json(serializer) -> dict:
    """The image endpoints take the same fields as a multipart form or a JSON body."""
    return {"multipart/form-data": serializer, "application/json": serializer}


class OcrView(APIView):
    parser_classes = [MultiPartParser, FormOrJSONParser, JSONParser]
    throttle_classes = OCR_THROTTLES  # OCR_USER_THROTTLE and the daily quotas

    @extend_schema(
        request=file_or_json(OcrRequestSerializer),
        parameters=[
            OpenApiParameter("async", bool, description="Run as a job: 202 at once, then poll `url`."),
            OpenApiParameter("force", bool, description="Read again even if these bytes were read before."),
            OpenApiParameter("format", str, enum=list(FORMATS), description="json, text, hocr or tsv."),
        ],
        responses={
            **record_or_rendering(201, "A new record."),
            **record_or_rendering(200, "An earlier identical result (cached)."),
            202: OpenApiResponse(OcrRecordSerializer, description="Queued: poll `url` for progress."),
            422: ErrorSerializer,
            504: ErrorSerializer,
            **ERRORS,
        },
        description="Recognize the text of one image or PDF and keep it in the caller's history.",
    )
    def post(self, request: Request) -> Response:
        serializer = OcrRequestSerializer(data=request.data, context={"query": request.query_params.dict()})
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        output = fields["format"]
        data, file_name = inputs.read_image(fields)
        done = services.recognize(
            owner=request.user,
            data=data,
            file_name=file_name,
            engine=fields["engine"],
            lang=fields["lang"],
            task=fields["task"],
            rotate=fields["rotate"],
            charset=fields["charset"],
            outputs=(output,) if output in ("hocr", "tsv") else (),
            pdf_text=fields["pdf_text"],
            upright=fields["upright"],
            side=fields["side"],
            queue=fields["queue"],
            force=fields["force"],
        )
        # A market client's demo takes any status but 200 for a failure, a new record's 201 too.
        status = 200 if done.http_status == 201 and market.is_market_body(request.data) else done.http_status
        if output == "json" or done.unfinished:
            context = {"request": request, "reused": done.reused}
            return Response(OcrRecordSerializer(done.record, context=context).data, status=status)
        return rendered_result(done.record, output, status=status)


class SlideView(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_classes = OCR_THROTTLES

    @extend_schema(
        request=file_or_json(SlideRequestSerializer),
        responses={200: SlideResultSerializer, 422: ErrorSerializer, **ERRORS},
        description="Solve a slide captcha: where the piece goes in the background. Nothing is stored.",
    )
    def post(self, request: Request) -> Response:
        serializer = SlideRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        result = services.solve_slide(
            target=_image_bytes(fields, "target"),
            background=_image_bytes(fields, "background"),
            algorithm=fields["algorithm"],
            simple_target=fields["simple_target"],
        )
        return Response(SlideResultSerializer(result).data)


def _image_bytes(fields: dict, name: str) -> bytes:
    return inputs.read_image(fields, name)[0]


@extend_schema_view(
    list=extend_schema(
        description="The caller's own records, newest first.",
        responses={200: OcrRecordSerializer(many=True), **errors(400, 401, 404)},
    ),
    retrieve=extend_schema(responses={200: OcrRecordSerializer, **errors(401, 404)}),
    destroy=extend_schema(responses={204: None, **errors(401, 404)}),
)
class HistoryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = OcrRecordSerializer
    # selectors.history filters, orders and searches (the history page calls it too); these
    # backends only document its parameters in the schema.
    filter_backends = [HistoryFilterBackend, HistoryOrderingFilter, HistorySearchFilter]
    filterset_class = HistoryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return OcrRecord.objects.none()
        arguments = history_arguments(self.request.query_params, strict=True)
        return selectors.history(owner=self.request.user, **arguments)

    def perform_destroy(self, instance) -> None:
        services.delete_record(record=instance)

    @extend_schema(
        responses={(200, "image/*"): OpenApiResponse(description="The uploaded image."), **errors(401, 404)}
    )
    @action(detail=True, methods=["get"])
    def image(self, request: Request, pk: int):
        return media.image_response(self.get_object())

    @extend_schema(
        description=(
            "The caller's whole history as a file, narrowed and ordered by the same filters, "
            "`search` and `ordering` as the list (a search matches at most 1,000 records). "
            "`format=csv` (default; one row per record) or `jsonl` (one JSON object per line, "
            "with every line's text, box and confidence)."
        ),
        parameters=[OpenApiParameter("format", enum=list(EXPORT_FORMATS), default="csv")],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, a header row first."),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="JSON Lines."),
            **errors(400, 401),
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request: Request) -> StreamingHttpResponse:
        serializer = ExportRequestSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        kind = serializer.validated_data["format"]
        lines, content_type = EXPORT_FORMATS[kind]
        response = StreamingHttpResponse(
            lines(self.filter_queryset(self.get_queryset())), content_type=content_type
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="ocr-history-{stamp}.{kind}"'
        return response


class EnginesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: EngineSerializer(many=True), **errors(401)})
    def get(self, request: Request) -> Response:
        return Response(EngineSerializer(selectors.engine_statuses(), many=True).data)


class HealthView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request: Request) -> Response:
        report = selectors.health()
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(HealthSerializer(report).data, status=code)


class NotWithApiKey(BasePermission):
    """Keys are managed with a password-backed login: a leaked key cannot mint more keys."""

    message = "API keys cannot manage API keys; sign in with a token or session."

    def has_permission(self, request, view) -> bool:
        return not isinstance(request.auth, ApiKey)


class PasswordChangeView(AuthThrottled, APIView):
    """A password-backed sign-in only: a leaked API key cannot change its owner's password."""

    permission_classes = [IsAuthenticated, NotWithApiKey]

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: TokenPairSerializer, **errors(400, 401, 403, 429)},
        description="Change the password and end every other sign-in: every refresh token, "
        "access token and session made before stops working. The answer is a new token pair; "
        "a session caller stays signed in.",
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordChangeSerializer(data=request.data, context={"user": request.user})
        serializer.is_valid(raise_exception=True)
        services.change_password(user=request.user, password=serializer.validated_data["new_password"])
        if isinstance(request.successful_authenticator, SessionAuthentication):
            update_session_auth_hash(request, request.user)
        refresh = ChainedRefreshToken.for_user(request.user)
        pair = {"refresh": str(refresh), "access": str(refresh.access_token)}
        return Response(TokenPairSerializer(pair).data)


@extend_schema_view(
    list=extend_schema(
        description="The caller's keys (the keys themselves are never shown again), and `usage`: "
        "today's (UTC) stored images and pages against the daily quotas (0: unlimited).",
        responses={200: ApiKeySerializer(many=True), **errors(401, 403, 404)},
    ),
    create=extend_schema(
        request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer, **errors(400, 401, 403)}
    ),
    destroy=extend_schema(
        description="Revoke a key: it stops working at once and stays listed.",
        responses={204: None, **errors(401, 403, 404)},
    ),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = ApiKeySerializer
    permission_classes = [IsAuthenticated, NotWithApiKey]
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiKey.objects.none()
        return selectors.api_keys_for(user=self.request.user)

    def list(self, request: Request, *args, **kwargs) -> Response:
        """The page of keys, and beside it the user's OCR today against the daily quotas."""
        response = super().list(request, *args, **kwargs)
        response.data["usage"] = UsageSerializer(usage_today(user=request.user)).data
        return response

    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, plain = services.create_api_key(owner=request.user, name=serializer.validated_data["name"])
        body = ApiKeyCreatedSerializer(api_key, context={"plain_key": plain}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        services.revoke_api_key(api_key=instance)


class BatchCreateView(APIView):
    parser_classes = [MultiPartParser]
    throttle_classes = OCR_THROTTLES

    @extend_schema(
        request={"multipart/form-data": BatchRequestSerializer},
        responses={202: BatchSerializer, **ERRORS},
        description="Many images at once (files and/or a zip): one queued record each. "
        "All or nothing: one unreadable file refuses the batch with its error (naming it; "
        "`rejected` in the error lists every bad file), and nothing is stored.",
    )
    def post(self, request: Request) -> Response:
        serializer = BatchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        files = [inputs.read_upload(upload) for upload in fields["images"]]
        if fields.get("archive") is not None:
            files += inputs.read_archive(fields["archive"])
        inputs.check_batch_size(files)
        batch = services.create_batch(
            owner=request.user,
            files=files,
            engine=fields["engine"],
            lang=fields["lang"],
            task=fields["task"],
            pdf_text=fields["pdf_text"],
        )
        summary = selectors.batch_summary(batch=batch)
        return Response(BatchSerializer(summary).data, status=status.HTTP_202_ACCEPTED)


class BatchDetailView(APIView):
    @extend_schema(responses={200: BatchSerializer, **errors(401, 404)})
    def get(self, request: Request, pk: int) -> Response:
        batch = selectors.batch_for(user=request.user, pk=pk)
        return Response(BatchSerializer(selectors.batch_summary(batch=batch)).data)
