"""Celery: with CELERY_BROKER_URL the task crosses the real broker to a real worker; without it
the task runs eagerly in-process (the embedded default)."""
import pytest
from django.conf import settings

from config.celery import app
from trials.tasks import ping


@pytest.mark.broker
def test_ping_task_reaches_the_database_through_the_configured_broker(world_tx):
    expected = {"trial": world_tx.trial.pk, "subjects": 2}
    if settings.CELERY_TASK_ALWAYS_EAGER:
        assert ping.delay(world_tx.trial.protocol_code).get() == expected
        return
    from celery.contrib.testing.worker import start_worker

    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=30):
        result = ping.delay(world_tx.trial.protocol_code)
        assert result.get(timeout=60) == expected
