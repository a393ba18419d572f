from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, UserCreationForm

from app.engines import registry
from app.models import OcrRecord


class InlineErrors:
    """Point each invalid input at its message (templates/web/_field.html) for screen readers."""

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": f"{self[name].auto_id}_errors"}
                )


class LoginForm(InlineErrors, AuthenticationForm):
    pass


class SignUpForm(InlineErrors, UserCreationForm):
    """Username, optional email, password twice; Django's password validators run on clean."""

    email = forms.EmailField(required=False, help_text="Optional. Only used to reach you.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


ORDERINGS = [
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-duration_ms", "Slowest first"),
    ("duration_ms", "Fastest first"),
    ("file_name", "File name A–Z"),
    ("-file_name", "File name Z–A"),
    ("engine", "Engine A–Z"),
]


class HistoryControls(forms.Form):
    """What the history page's filter bar shows. The same names as the API's query string;
    the filtering itself happens in app.selectors.history."""

    search = forms.CharField(required=False, label="Search")
    engine = forms.ChoiceField(
        required=False, choices=[("", "All engines"), *[(name, name) for name in registry.ENGINES]]
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *OcrRecord.Status.choices])
    ordering = forms.ChoiceField(required=False, choices=ORDERINGS, label="Order")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["search"].widget.attrs.update(
            {"type": "search", "placeholder": "Text or file name", "autocomplete": "off"}
        )


class PasswordForm(InlineErrors, PasswordChangeForm):
    """The current password, then the new one twice; Django's validators run on clean.
    Saved through services.change_password, never PasswordChangeForm.save."""


class ApiKeyForm(InlineErrors, forms.Form):
    name = forms.CharField(max_length=100, label="Name", help_text="What the key is for, e.g. “scanner”.")
