"""Reads for the browser pages that app/selectors.py does not have yet (to move there).

The history page filters, searches and orders exactly as `GET /api/history/` does:
the same FilterSet and the same DRF search and ordering backends, configured by the
API view itself, so the two can never drift apart.
"""

from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.request import Request

from app import selectors
from app.api.filters import HistoryFilter, HistoryOrderingFilter, HistorySearchFilter
from app.api.views import HistoryViewSet
from app.models import OcrRecord


def filtered_history(*, user, request: HttpRequest) -> QuerySet[OcrRecord]:
    """The user's records narrowed by the query string: engine, status, created_after/before,
    search (text and file name), ordering (created_at, duration_ms, file_name, engine)."""
    queryset = selectors.history_for(user=user)
    filterset = HistoryFilter(request.GET, queryset=queryset)
    if filterset.is_valid():  # an unknown engine or a bad date is ignored, not an error page
        queryset = filterset.qs
    api_request = Request(request)
    # The API's own backends, in the API's order: ordering, then search (relevance first
    # unless an ordering was chosen; full-text on PostgreSQL).
    for backend in (HistoryOrderingFilter, HistorySearchFilter):
        queryset = backend().filter_queryset(api_request, queryset, HistoryViewSet)
    # A stable order under ties (same engine, same duration) so pages never repeat a row.
    return queryset.order_by(*queryset.query.order_by, "-id")
