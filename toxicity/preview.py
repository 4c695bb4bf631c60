"""The CRF day form's live grade panel: what saving the form would derive, and how to say it.

The page posts the form's observations; the server grades them in the context the rest of the
subject's course gives the day (``toxicity.course.derive.preview_day``: the masking window, an
ongoing episode, the death, the age), so the panel shows what the save will store, the grading
CLI and API give for the same input, and the casebook then shows. Only data-entry roles preview:
a read-only form shows the saved grades.
"""
import json
from datetime import date

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from toxicity.course.derive import preview_day
from toxicity.course.load import load_course
from toxicity.grading import GradingInputError, grade
from toxicity.grading.inputs import FeverMask
from toxicity.models import OBSERVATIONS
from trials.roles import CRF_ROLES, DATA_ENTRY_ROLES
from trials.selectors import RoleIndex, subject_list

LIST_FIELDS = ("vasopressors", "inotropes")
FLOW_DEVICES = ("nasal_cannula", "high_flow_nasal_cannula")


def masked_text(mask: FeverMask | None) -> str:
    """"masked by tocilizumab on 12 Mar" (R-CRS-2), or "" outside any masking window."""
    if mask is None:
        return ""
    return f"masked by {mask.drug.replace('_', ' ')} on {mask.date:%d %b}".replace(" 0", " ", 1)


def crs_missing(observations) -> str:
    """What an NE CRS grade waits for, in a few words (R-CRS-15)."""
    get = observations.get
    if get("hypoxia") and (get("oxygen_device") or "none") == "none":
        return "oxygen device missing"
    if get("hypoxia") and get("oxygen_device") in FLOW_DEVICES and get("oxygen_flow_l_min") in (None, ""):
        return "oxygen flow missing"
    if get("oxygen_device") == "mechanical_ventilation" and get("intubation_reason") not in ("hypoxia", None, ""):
        return "oxygen support without the ventilator missing"
    if get("temperature_max_c") in (None, ""):
        return "temperature missing"
    return "a value missing"


def icans_missing(observations) -> str:
    get = observations.get
    if get("capd_score") in (None, "") and get("ice_score") in (None, ""):
        return "ICE/CAPD missing"
    return "a value missing"


def grade_text(grade, minimum, missing: str) -> str:
    """3, "NE", or "≥ 3 (oxygen device missing)" for an NE grade with a proven floor."""
    if grade != "NE":
        return str(grade)
    if minimum is not None:
        return f"≥ {minimum} ({missing})"
    return f"NE ({missing})"


def panel(result: dict, context: dict, observations: dict) -> dict:
    """The grading output plus the panel's sentences."""
    mask = context.get("fever_masked_by")
    return {
        **result,
        "context": {"crs_ongoing": context.get("crs_ongoing", False),
                    "fever_masked_by": mask.as_dict() if isinstance(mask, FeverMask) else None},
        "crs_text": grade_text(result["crs_grade"], result["minimum_crs_grade"], crs_missing(observations)),
        "icans_text": grade_text(result["icans_grade"], result["minimum_icans_grade"], icans_missing(observations)),
        "masked_text": masked_text(mask if isinstance(mask, FeverMask) else None),
    }


def _observations(data: dict) -> dict:
    values = {}
    for name in OBSERVATIONS:
        value = data.get(name)
        if name in LIST_FIELDS:
            value = value if isinstance(value, list) else []
        values[name] = value
    return values


@login_required
@require_POST
def assessment_preview(request, pk, day):
    subject = get_object_or_404(subject_list(user=request.user, roles=CRF_ROLES), pk=pk)
    if not RoleIndex.for_user(request.user).has(DATA_ENTRY_ROLES, subject.trial_id, subject.site_id):
        raise Http404("No such form.")  # read-only roles see the saved grades, no preview
    try:
        on = date.fromisoformat(day)
        data = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"non_field_errors": ["Send the form's fields as one JSON object."]}, status=400)
    if not isinstance(data, dict):
        return JsonResponse({"non_field_errors": ["Send the form's fields as one JSON object."]}, status=400)
    course = load_course(subject.pk)
    if course is None:
        raise Http404("No such subject.")
    existing = next((a.id for a in course.assessments if a.day == on), None)
    observations = _observations(data)
    grading_input = preview_day(course, on, observations, assessment_id=existing)
    try:
        result = grade(grading_input).as_dict()
    except GradingInputError as exc:
        return JsonResponse(exc.errors, status=400)
    return JsonResponse(panel(result, grading_input, observations))
