"""Background tasks of the trials app. A task takes ids, calls a service, and is idempotent."""
from celery import shared_task

from trials.models import Trial


@shared_task(name="trials.ping", ignore_result=False)
def ping(protocol_code: str) -> dict:
    """Health check through the broker and the database: the trial's id and subject count."""
    trial = Trial.objects.get(protocol_code=protocol_code)
    return {"trial": trial.pk, "subjects": trial.subjects.filter(voided=False).count()}
