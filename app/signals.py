"""Keep media in step with rows: a deleted record takes its file with it.

A receiver (rather than a service call) also covers admin bulk deletes and
cascades from deleting a user. The file goes only once the transaction commits,
so a rolled-back delete never loses an image.
"""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from app.models import OcrRecord


@receiver(post_delete, sender=OcrRecord)
def delete_image_file(sender, instance: OcrRecord, **kwargs) -> None:
    if not instance.image:
        return
    storage, name = instance.image.storage, instance.image.name
    transaction.on_commit(lambda: storage.delete(name))
