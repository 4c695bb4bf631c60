"""Browser pages of the trials app: the home page lists what the user's roles reach."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from trials import selectors
from trials.selectors import RoleIndex


@login_required
def home(request):
    index = RoleIndex.for_user(request.user)
    trials = [
        {"trial": trial, "roles": sorted(index.roles(trial.pk))}
        for trial in selectors.trial_list(user=request.user)
    ]
    subjects = selectors.subject_list(user=request.user).order_by("trial", "subject_id")[:200]
    return render(request, "trials/home.html", {"trials": trials, "subjects": subjects})
