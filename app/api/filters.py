"""The history's query-string parameters: read into selectors.history's arguments, and
documented in the OpenAPI schema by the backends HistoryViewSet lists."""

import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.settings import api_settings

from app import search, selectors
from app.engines import registry
from app.models import OcrRecord


class UtcDateTimeField(forms.DateTimeField):
    """A date-time turned to UTC before it reaches the database: Python reads offsets up to
    ±23:59 but PostgreSQL refuses any past ±15:59 (a 500, found by app/tests/test_fuzz.py), and
    a date at the edge of year 1 or 9999 may not exist in UTC at all."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:
            raise ValidationError("That date-time is out of range.", code="invalid") from None


class UtcDateTimeFilter(django_filters.DateTimeFilter):
    field_class = UtcDateTimeField


class HistoryFilter(django_filters.FilterSet):
    engine = django_filters.ChoiceFilter(choices=[(name, name) for name in registry.ENGINES])
    status = django_filters.ChoiceFilter(choices=OcrRecord.Status.choices)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = OcrRecord
        fields = ["engine", "status", "created_after", "created_before"]


def history_arguments(params: QueryDict, *, strict: bool) -> dict[str, Any]:
    """selectors.history's keyword arguments (all but the owner) from a query string.

    A bad filter value (an unknown engine or status, a date that is not one) is a 400
    naming the parameter when `strict` (the API); the pages ignore every filter instead of
    answering an error page. Unknown `ordering` fields are dropped either way."""
    filterset = HistoryFilter(params, queryset=OcrRecord.objects.none())
    if filterset.is_valid():
        cleaned = filterset.form.cleaned_data
    elif strict:
        raise translate_validation(filterset.errors)  # as DjangoFilterBackend: codes kept
    else:
        cleaned = {}
    ordering = params.get(api_settings.ORDERING_PARAM, "")
    return {
        "q": params.get(api_settings.SEARCH_PARAM, ""),
        "engine": cleaned.get("engine") or "",
        "status": cleaned.get("status") or "",
        "created_after": cleaned.get("created_after"),
        "created_before": cleaned.get("created_before"),
        "ordering": [field.strip() for field in ordering.split(",") if field.strip()],
    }


class HistoryFilterBackend(DjangoFilterBackend):
    """Documents HistoryFilter's parameters in the schema; selectors.history applies them."""

    def filter_queryset(self, request, queryset, view):
        return queryset  # HistoryViewSet.get_queryset has filtered it (selectors.history)


class HistoryOrderingFilter(OrderingFilter):
    """Documents `?ordering=` (DRF's) in the schema; selectors.history applies it."""

    def filter_queryset(self, request, queryset, view):
        return queryset  # HistoryViewSet.get_queryset has ordered it (selectors.history)

    def get_schema_operation_parameters(self, view):
        fields = ", ".join(selectors.HISTORY_ORDERING_FIELDS)
        description = (
            f"Order by {fields} (`-` before a field: descending; several: comma-separated). "
            "Default: newest first, or most relevant first with `search`."
        )
        return [
            {**parameter, "description": description}
            for parameter in super().get_schema_operation_parameters(view)
        ]


class HistorySearchFilter(BaseFilterBackend):
    """Documents `?search=` in the schema; selectors.history applies it (search.search_history:
    full-text on PostgreSQL, most relevant first unless `?ordering=` was given)."""

    search_param = api_settings.SEARCH_PARAM

    def filter_queryset(self, request, queryset, view):
        return queryset  # HistoryViewSet.get_queryset has searched it (selectors.history)

    def get_schema_operation_parameters(self, view):
        description = (
            "Words to find in the recognized text or the file name; every word must match. "
            "Results come most relevant first (a match in the file name, then more matches, "
            "then newer) unless `ordering` is given. At most "
            f"{search.SEARCH_MAX_RESULTS} results (and `count`): the newest matches, or the "
            "first ones in `ordering`. On PostgreSQL: whole words, case-insensitive, no "
            "stemming or prefixes (`invoice` does not find `invoices`), Chinese found as any "
            "substring; on SQLite: case-insensitive substrings."
        )
        return [
            {
                "name": self.search_param,
                "required": False,
                "in": "query",
                "description": description,
                "schema": {"type": "string"},
            }
        ]
