import datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.settings import api_settings

from app import search
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


class HistoryOrderingFilter(OrderingFilter):
    """`?ordering=`, DRF's, for the history; without it, newest first. Runs before
    HistorySearchFilter, which orders a search by relevance unless the client chose."""

    def requested(self, request, queryset, view) -> list[str]:
        """The valid fields of `?ordering=`, or [] when the client did not choose one."""
        params = request.query_params.get(self.ordering_param, "")
        fields = [param.strip() for param in params.split(",") if param.strip()]
        return self.remove_invalid_fields(queryset, fields, view, request) if fields else []

    def get_schema_operation_parameters(self, view):
        fields = ", ".join(getattr(view, "ordering_fields", None) or [])
        description = (
            f"Order by {fields} (`-` before a field: descending; several: comma-separated). "
            "Default: newest first, or most relevant first with `search`."
        )
        return [
            {**parameter, "description": description}
            for parameter in super().get_schema_operation_parameters(view)
        ]


class HistorySearchFilter(BaseFilterBackend):
    """`?search=`: search.search_history (full-text on PostgreSQL), most relevant first
    unless `?ordering=` was given. Runs after HistoryFilter and HistoryOrderingFilter."""

    search_param = api_settings.SEARCH_PARAM

    def filter_queryset(self, request, queryset, view):
        term = request.query_params.get(self.search_param, "")
        ranked = not HistoryOrderingFilter().requested(request, queryset, view)
        return search.search_history(queryset, term, ranked=ranked)

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
