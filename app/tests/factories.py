import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from app.models import OcrRecord
from app.tests.imaging import encode, render


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OcrRecordFactory(factory.django.DjangoModelFactory):
    """A stored record with a real (small) image file, without running an engine."""

    class Meta:
        model = OcrRecord

    owner = factory.SubFactory(UserFactory)
    file_name = factory.Sequence(lambda n: f"scan{n}.png")
    image = factory.LazyAttribute(lambda r: ContentFile(encode(render([r.text or "x"])), name="img.png"))
    sha256 = factory.Faker("sha256")
    size = 100
    width = 200
    height = 50
    engine = "tesseract"
    lang = "eng"
    task = "document"
    status = OcrRecord.Status.DONE
    text = factory.Sequence(lambda n: f"record number {n}")
    lines = factory.LazyAttribute(
        lambda r: [{"text": r.text, "box": [[0, 0], [200, 0], [200, 50], [0, 50]], "score": 0.9}]
    )
    duration_ms = factory.Sequence(lambda n: 10 + n)
