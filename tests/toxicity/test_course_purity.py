"""The import direction of the clinical course (issue: one clinical course).

``toxicity/course/`` and ``toxicity/grading/`` are pure: their modules import nothing from Django,
DRF, the views, the API or reporting - except the three modules of the course that talk to the
database (``load.py`` reads, ``store.py`` and ``write.py`` write), which may use Django but still
nothing from views, the API or reporting. The checks (``toxicity/checks``) are pure too.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE_MODULES = {"load.py", "store.py", "write.py"}
PURE = sorted([*(ROOT / "toxicity" / "course").glob("*.py"), *(ROOT / "toxicity" / "grading").glob("*.py"),
               *(ROOT / "toxicity" / "checks").glob("*.py")])
PURE = [p for p in PURE if not (p.parent.name == "course" and p.name in DATABASE_MODULES)]
ALL_COURSE = sorted((ROOT / "toxicity" / "course").glob("*.py"))


def imported(path: Path) -> list[str]:
    """Every module an import statement names, relative imports resolved inside the package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join([*base, node.module] if node.module else base))
            else:
                names.append(node.module or "")
    return names


def test_the_modules_are_found():
    assert {"records.py", "masking.py", "derive.py", "episodes.py"} <= {p.name for p in PURE}
    assert DATABASE_MODULES <= {p.name for p in ALL_COURSE}


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_modules_import_no_django(path):
    bad = [n for n in imported(path) if n.split(".")[0] in ("django", "rest_framework", "trials", "reporting")
           or n.startswith(("toxicity.models", "toxicity.views", "toxicity.api", "toxicity.services",
                            "toxicity.course.load", "toxicity.course.store", "toxicity.course.write"))]
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", ALL_COURSE, ids=lambda p: p.name)
def test_the_course_imports_no_views_api_or_reporting(path):
    bad = [n for n in imported(path) if n.split(".")[0] == "reporting"
           or n.startswith(("toxicity.views", "toxicity.api", "toxicity.preview", "trials.views", "trials.api"))]
    assert not bad, f"{path.name} imports {bad}"


def test_one_write_sequence_and_no_signals():
    """The write sequence is called, not signalled: no module of the apps defines or connects a
    Django signal, and the old chain (subject_grades_changed, subject_records_changed) is gone."""
    for app in ("trials", "toxicity", "reporting"):
        for path in (ROOT / app).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "django.dispatch" not in text and "Signal(" not in text, path
            assert "subject_grades_changed" not in text and "subject_records_changed" not in text, path


def test_the_observed_fields_are_declared_once_on_the_model():
    """The grading input, the API, the course records and the CRF read the model's list; the form
    only groups it for the page (every observed field appears in exactly one group)."""
    from toxicity.api.serializers import RAW_ASSESSMENT_FIELDS
    from toxicity.forms import CAPD_FIELDS, CRS_FIELDS, ICANS_FIELDS, ICE_FIELDS, REPORTED_FIELDS
    from toxicity.models import OBSERVATIONS, DailyAssessment

    grouped = ["temperature_max_c", *CRS_FIELDS, *ICE_FIELDS, *CAPD_FIELDS, *ICANS_FIELDS, *REPORTED_FIELDS]
    assert sorted(grouped) == sorted(OBSERVATIONS) and len(set(grouped)) == len(grouped)
    assert RAW_ASSESSMENT_FIELDS == ["assessment_date", *OBSERVATIONS]
    assert DailyAssessment.OBSERVATIONS is OBSERVATIONS
