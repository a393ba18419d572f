"""Thin API views: validate, call a service or selector, shape the response."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from app import inputs, media, selectors, services
from app.api.filters import HistoryFilter
from app.api.serializers import (
    EngineSerializer,
    ErrorSerializer,
    HealthSerializer,
    OcrRecordSerializer,
    OcrRequestSerializer,
    RegisterSerializer,
    UserSerializer,
)
from app.models import OcrRecord

ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 413, 503)}


class AuthThrottled:
    """Login, refresh and sign-up share one per-address rate (settings: OCR_AUTH_THROTTLE)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


class RegisterView(AuthThrottled, APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=RegisterSerializer, responses={201: UserSerializer, 400: ErrorSerializer})
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.register_user(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainView(AuthThrottled, TokenObtainPairView):
    pass


class TokenRefresh(AuthThrottled, TokenRefreshView):
    pass


class OcrView(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={
            "multipart/form-data": OcrRequestSerializer,
            "application/json": OcrRequestSerializer,
        },
        responses={201: OcrRecordSerializer, 504: ErrorSerializer, **ERRORS},
        description="Recognize the text of one image and keep it in the caller's history.",
    )
    def post(self, request: Request) -> Response:
        serializer = OcrRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        if fields.get("image") is not None:
            data, file_name = inputs.read_upload(fields["image"])
        else:
            data, file_name = inputs.read_base64(fields["image_base64"]), ""
        record = services.recognize(
            owner=request.user,
            data=data,
            file_name=file_name,
            engine=fields["engine"],
            lang=fields["lang"],
            task=fields["task"],
            rotate=fields["rotate"],
        )
        body = OcrRecordSerializer(record, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(description="The caller's own records, newest first."),
    retrieve=extend_schema(responses={200: OcrRecordSerializer, 404: ErrorSerializer}),
    destroy=extend_schema(responses={204: None, 404: ErrorSerializer}),
)
class HistoryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = OcrRecordSerializer
    filterset_class = HistoryFilter
    search_fields = ["text", "file_name"]
    ordering_fields = ["created_at", "duration_ms", "file_name", "engine"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return OcrRecord.objects.none()
        return selectors.history_for(user=self.request.user)

    def perform_destroy(self, instance) -> None:
        services.delete_record(record=instance)

    @extend_schema(responses={(200, "image/*"): OpenApiResponse(description="The uploaded image.")})
    @action(detail=True, methods=["get"])
    def image(self, request: Request, pk: int):
        return media.image_response(self.get_object())


class EnginesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=EngineSerializer(many=True))
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
