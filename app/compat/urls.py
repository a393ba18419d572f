"""The older services' paths, at the root as their clients call them."""

from django.urls import path, re_path

from app.compat import market_views, ocr_api_server, ocr_api_server_2024

RET = r"(?:/(?P<ret_type>json|text))?/?$"

urlpatterns = [
    # ocr_api_server
    path("ping", ocr_api_server.PingView.as_view(), name="compat-ping"),
    re_path(rf"^(?P<opt>ocr|det)/(?P<img_type>file|b64){RET}", ocr_api_server.RecognizeView.as_view()),
    re_path(
        rf"^slide/(?P<algorithm>match|compare)/(?P<img_type>file|b64){RET}",
        ocr_api_server.SlideView.as_view(),
    ),
    # ocr_api_server 2024 (FastAPI)
    path("slide_match", ocr_api_server_2024.SlideMatchView.as_view(), name="compat-slide-match"),
    path("detection", ocr_api_server_2024.DetectionView.as_view(), name="compat-detection"),
    # rapidocr_api's, or ocr_api_server 2024's, by the fields sent
    path("ocr", ocr_api_server_2024.OcrPathView.as_view(), name="compat-rapidocr-api"),
    # the cloud market's products (Aliyun)
    path("rest/160601/ocr/ocr_idcard.json", market_views.IdCardView.as_view(), name="compat-market-idcard"),
    path("api/predict/ocr_general", market_views.GeneralView.as_view(), name="compat-market-general"),
]
