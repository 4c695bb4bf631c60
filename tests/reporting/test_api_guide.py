"""The Python example of docs/api.md works against a live server: a first pull gets every
assessment, a second pull only what changed in between (a correction and a void)."""
import re
import runpy
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from toxicity import services

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")


def example_code() -> str:
    text = GUIDE.read_text()
    block = text.split("<!-- example:begin -->", 1)[1].split("<!-- example:end -->", 1)[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.mark.django_db(transaction=True)
def test_guide_example_pulls_all_then_only_changes(world_tx, live_server, tmp_path, monkeypatch, capsys):
    user, subject = world_tx.users["coordinator_a"], world_tx.subject_a
    rows = [services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=n),
                                       **NORMAL) for n in range(3)]
    script = tmp_path / "pull.py"
    script.write_text(example_code())
    monkeypatch.setenv("CART_API", f"{live_server.url}/api/v1")
    monkeypatch.setenv("CART_TOKEN", Token.objects.create(user=world_tx.users["sponsor"]).key)
    monkeypatch.setenv("CART_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("CART_OUT", str(tmp_path / "out.jsonl"))

    runpy.run_path(str(script))
    assert "3 assessments changed since the beginning" in capsys.readouterr().out

    services.assessment_update(assessment=rows[1], user=user, version=rows[1].version, reason="source updated",
                               changes={"temperature_max_c": Decimal("37.2")})
    services.assessment_void(assessment=rows[2], user=user, version=rows[2].version, reason="wrong subject")
    runpy.run_path(str(script))
    assert "2 assessments changed since" in capsys.readouterr().out
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 5
