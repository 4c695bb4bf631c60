"""Background tasks of the trials app. A task takes ids, calls a service, and is idempotent."""
from celery import shared_task

from trials.models import Trial

from . import notifications


@shared_task(name="trials.ping", ignore_result=False)
def ping(protocol_code: str) -> dict:
    """Health check through the broker and the database: the trial's id and subject count."""
    trial = Trial.objects.get(protocol_code=protocol_code)
    return {"trial": trial.pk, "subjects": trial.subjects.filter(voided=False).count()}


@shared_task(name="trials.notify", autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def notify(*, trial_id: int, roles: list[str], subject_line: str, body: str, site_id: int | None = None) -> int:
    """Send an e-mail notification (enqueued on commit by ``notifications.notify_on_commit``)."""
    return notifications.send_notification(trial_id=trial_id, roles=roles, subject_line=subject_line, body=body,
                                           site_id=site_id)
