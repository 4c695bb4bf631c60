"""The OpenAPI document says what the clinical resources' writes take and answer (api.md): a PATCH
carries the required ``version`` and reason for change, create/PATCH/void answer with the record's
read representation, and the 400/404/409/423 errors are documented."""
import pytest
from drf_spectacular.generators import SchemaGenerator

from trials.api.base import ClinicalViewSet

from .test_list_rows import list_resources


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


def _ref(content):
    return content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


CLINICAL = sorted((name, cls) for name, cls in list_resources().items() if issubclass(cls, ClinicalViewSet))


def test_every_clinical_resource_is_checked():
    assert {"subjects", "infusions", "assessments", "icu-stays", "adverse-events"} <= {name for name, _ in CLINICAL}


@pytest.mark.parametrize("resource,view", CLINICAL, ids=[name for name, _ in CLINICAL])
def test_writes_are_documented_as_they_behave(document, resource, view):
    paths, components = document["paths"], document["components"]["schemas"]
    read = view.read_serializer_class.__name__.removesuffix("Serializer")
    reason = view().change_reason_key() if view.write_serializer_class else "reason"

    patch = paths[f"/api/v1/{resource}/{{id}}/"]["patch"]
    body = components[_ref(patch["requestBody"]["content"])]
    assert {"version", reason} <= set(body["required"])
    assert set(view.write_serializer_class.Meta.fields) <= set(body["properties"])
    assert _ref(patch["responses"]["200"]["content"]) == read
    assert {"400", "404", "409", "423"} <= set(patch["responses"])
    assert "current_version" in components[_ref(patch["responses"]["409"]["content"])]["properties"]

    create = paths[f"/api/v1/{resource}/"]["post"]
    assert _ref(create["responses"]["201"]["content"]) == read
    assert "400" in create["responses"]

    void = paths[f"/api/v1/{resource}/{{id}}/void/"]["post"]
    assert _ref(void["responses"]["200"]["content"]) == read
    assert {"version", "reason"} <= set(components[_ref(void["requestBody"]["content"])]["required"])
