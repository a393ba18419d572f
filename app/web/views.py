"""Browser pages. Thin: a form or a query, then a service or a selector, then a template.

OCR itself happens in the browser's call to `POST /api/ocr/` (static/js/upload.js), so
the upload progress is real and there is one way in for images.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from PIL import Image

from app import images, selectors, services
from app.api.filters import history_arguments
from app.api.pagination import HistoryPagination
from app.api.serializers import OcrRecordSerializer
from app.throttles import usage_today
from app.web.forms import ApiKeyForm, HistoryControls, PasswordForm, SignUpForm

COMMON = ("JPEG", "PNG")  # listed first on the upload page
NEW_KEY = "new_api_key"  # session slot holding a just-made key until it has been shown


def sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.register_user(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.get_username()}. Drop an image to read its text.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "web/signup.html", {"form": form})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/upload.html",
        {
            "max_bytes": settings.OCR_MAX_UPLOAD_BYTES,
            "accept": ",".join(_accepted_extensions()),
            "formats": ", ".join([*sorted(images.ALLOWED_FORMATS, key=_common_first), "PDF"]),
        },
    )


@login_required
def history(request: HttpRequest) -> HttpResponse:
    controls = HistoryControls(request.GET or None)
    controls.is_valid()
    # The same reads as GET /api/history/, except that a bad filter is ignored, not an error.
    records = selectors.history(owner=request.user, **history_arguments(request.GET, strict=False))
    paginator = Paginator(records, HistoryPagination.page_size)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "web/history.html",
        {
            "controls": controls,
            "page": page,
            "query": query.urlencode(),
            "filtered": any(request.GET.get(name) for name in ("search", "engine", "status")),
        },
    )


@login_required
def record(request: HttpRequest, pk: int) -> HttpResponse:
    found = selectors.record_for(user=request.user, pk=pk)
    data = OcrRecordSerializer(found, context={"request": request}).data
    return render(request, "web/record.html", {"record": found, "record_data": data})


@login_required
@require_http_methods(["GET", "POST"])
def delete_record(request: HttpRequest, pk: int) -> HttpResponse:
    """POST deletes; GET asks first (the page a browser without JavaScript sees)."""
    found = selectors.record_for(user=request.user, pk=pk)
    if request.method == "POST":
        name = found.file_name
        services.delete_record(record=found)
        messages.success(request, f"Deleted {name}.")
        return redirect(_safe_next(request) or reverse("web:history"))
    return render(request, "web/record_confirm_delete.html", {"record": found})


def _common_first(fmt: str) -> tuple[bool, str]:
    return fmt not in COMMON, fmt


def _accepted_extensions() -> list[str]:
    """File extensions of the formats the API accepts (app/images.py, and PDFs), for the file picker."""
    registered = Image.registered_extensions()
    return sorted([*(ext for ext, fmt in registered.items() if fmt in images.ALLOWED_FORMATS), ".pdf"])


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    """List the user's keys and make new ones. A new key is shown once: the POST stores it
    in the session and redirects (so a reload cannot make a second key), and the next
    page view takes it out of the session again."""
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        api_key, plain = services.create_api_key(owner=request.user, name=form.cleaned_data["name"])
        request.session[NEW_KEY] = {"id": api_key.pk, "plain": plain}
        return redirect("web:api-keys")
    keys = selectors.api_keys_for(user=request.user)
    shown = request.session.pop(NEW_KEY, None)
    created = {"key": keys.get(pk=shown["id"]), "plain": shown["plain"]} if shown else None
    context = {"form": form, "keys": keys, "created": created, "usage": usage_today(user=request.user)}
    response = render(request, "web/api_keys.html", context)
    response["Cache-Control"] = "no-store"  # the page may hold a key in clear
    return response


@login_required
@require_http_methods(["POST"])
def revoke_api_key(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = get_object_or_404(selectors.api_keys_for(user=request.user), pk=pk)
    services.revoke_api_key(api_key=api_key)
    messages.success(request, f"The key “{api_key.name}” is revoked: it no longer works.")
    return redirect("web:api-keys")


@login_required
@require_http_methods(["GET", "POST"])
def change_password(request: HttpRequest) -> HttpResponse:
    """A new password ends every other sign-in (sessions, refresh and access tokens); this
    browser stays logged in."""
    form = PasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.change_password(user=request.user, password=form.cleaned_data["new_password1"])
        update_session_auth_hash(request, request.user)
        messages.success(request, "Your password is changed. Every other sign-in has ended.")
        return redirect("web:password")
    return render(request, "web/password.html", {"form": form})
