"""The older services' paths, at the root as their clients call them."""

from django.urls import path, re_path

from app.compat import ocr_api_server, rapidocr_api

RET = r"(?:/(?P<ret_type>json|text))?/?$"

urlpatterns = [
    # ocr_api_server
    path("ping", ocr_api_server.PingView.as_view(), name="compat-ping"),
    re_path(rf"^(?P<opt>ocr|det)/(?P<img_type>file|b64){RET}", ocr_api_server.RecognizeView.as_view()),
    re_path(
        rf"^slide/(?P<algorithm>match|compare)/(?P<img_type>file|b64){RET}",
        ocr_api_server.SlideView.as_view(),
    ),
    # rapidocr_api
    path("ocr", rapidocr_api.RapidOcrApiView.as_view(), name="compat-rapidocr-api"),
]
