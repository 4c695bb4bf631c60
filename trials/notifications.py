"""E-mail notifications, enqueued when the transaction commits and sent by a Celery task, so a
request never waits for the mail server (a rolled-back write tells no one)."""
from django.core.mail import send_mail
from django.db import transaction

from .models import Membership
from .roles import Role


def emails_for(trial_id: int, roles, site_id: int | None = None) -> list[str]:
    members = Membership.objects.filter(trial_id=trial_id, role__in=list(roles)).select_related("user")
    if site_id is not None:
        members = members.filter(site_id=site_id)
    return sorted({m.user.email for m in members if m.user.email and m.user.is_active})


def send_notification(*, trial_id: int, roles, subject_line: str, body: str, site_id: int | None = None) -> int:
    """Send one notification now to the members holding ``roles``; returns how many recipients."""
    recipients = emails_for(trial_id, roles, site_id)
    if recipients:
        send_mail(subject=subject_line, message=body, from_email=None, recipient_list=recipients)
    return len(recipients)


def notify_on_commit(*, trial_id: int, roles, subject_line: str, body: str, site_id: int | None = None) -> None:
    from .tasks import notify  # the task module imports this one

    kwargs = dict(trial_id=trial_id, roles=sorted(roles), subject_line=subject_line, body=body, site_id=site_id)
    transaction.on_commit(lambda: notify.delay(**kwargs))


def notify_data_managers(*, subject, text: str) -> None:
    """Derived grade >= 4 or a death: the data managers hear at once (issue: notifications)."""
    notify_on_commit(
        trial_id=subject.trial_id, roles={Role.DATA_MANAGER},
        subject_line=f"{subject.trial.protocol_code} {subject.subject_id}: {text}",
        body=f"Subject {subject.subject_id} (site {subject.site.site_number}): {text}",
    )
