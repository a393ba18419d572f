import django_filters

from app.engines import registry
from app.models import OcrRecord


class HistoryFilter(django_filters.FilterSet):
    engine = django_filters.ChoiceFilter(choices=[(name, name) for name in registry.ENGINES])
    status = django_filters.ChoiceFilter(choices=OcrRecord.Status.choices)
    created_after = django_filters.DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = OcrRecord
        fields = ["engine", "status", "created_after", "created_before"]
