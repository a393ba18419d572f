"""Every write the service makes. Views, adapters, tasks and commands call these; nothing
else writes. One module per subject; import them from here: `services.recognize(...)`."""

from app.services.accounts import (
    change_password,
    create_api_key,
    log_out,
    record_api_key_use,
    register_user,
    revoke_api_key,
)
from app.services.captcha import classification_probability, solve_slide
from app.services.ocr import Recognition, create_batch, delete_record, recognize, run_job

__all__ = [
    "Recognition",
    "change_password",
    "classification_probability",
    "create_api_key",
    "create_batch",
    "delete_record",
    "log_out",
    "recognize",
    "record_api_key_use",
    "register_user",
    "revoke_api_key",
    "run_job",
    "solve_slide",
]
