"""deploy/render_config.py: one template serves every endpoint shape, and nothing is left unrendered."""

from __future__ import annotations

import pytest

from deploy.render_config import render

TEMPLATE = {
    "Name": "{{NAME}}",
    "Count": "{{COUNT:int}}",
    "Weight": "{{WEIGHT:float}}",
    "Capture": {"Enabled": "{{CAPTURE:bool}}", "Percent": "{{PERCENT:int}}"},
    "Variants": [{"Name": "{{CANDIDATE}}"}],
    "Arn": "arn:aws:ecr:{{REGION}}:{{ACCOUNT_ID}}:repository/{{NAME}}",
}
VALUES = {
    "NAME": "vr", "COUNT": "2", "WEIGHT": "0.5", "CAPTURE": "true", "PERCENT": "20", "CANDIDATE": "candidate",
    "REGION": "eu-west-1", "ACCOUNT_ID": "123456789012",
}  # fmt: skip


def test_typed_whole_placeholders_and_placeholders_inside_strings_are_filled():
    assert render(TEMPLATE, VALUES, "t.json") == {
        "Name": "vr",
        "Count": 2,
        "Weight": 0.5,
        "Capture": {"Enabled": True, "Percent": 20},
        "Variants": [{"Name": "candidate"}],
        "Arn": "arn:aws:ecr:eu-west-1:123456789012:repository/vr",
    }


def test_an_empty_value_removes_its_field_and_the_objects_it_empties():
    rendered = render(TEMPLATE, VALUES | {"CAPTURE": "", "PERCENT": "", "CANDIDATE": ""}, "t.json")
    assert "Capture" not in rendered and "Variants" not in rendered and rendered["Count"] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"COUNT": "two"}, "placeholder COUNT needs a whole number, got 'two'"),
        ({"WEIGHT": "half"}, "placeholder WEIGHT needs a number"),
        ({"CAPTURE": "yes"}, "placeholder CAPTURE needs true or false"),
        ({"REGION": ""}, "placeholder REGION inside a string needs a non-empty value"),
    ],
)
def test_bad_values_stop_the_render_naming_the_template_and_placeholder(change, message):
    with pytest.raises(SystemExit, match=message) as stopped:
        render(TEMPLATE, VALUES | change, "t.json")
    assert str(stopped.value).startswith("t.json: ")


@pytest.mark.parametrize("missing", ["NAME", "ACCOUNT_ID"])
def test_a_placeholder_without_a_value_stops_the_render(missing):
    values = {name: value for name, value in VALUES.items() if name != missing}
    with pytest.raises(SystemExit, match=f"{missing}"):
        render(TEMPLATE, values, "t.json")
