"""The YAML editor marks an error at its line: a syntax error's own line, or the line of the field Kubernetes named."""

import pytest

from apps.clusters.actions.services import parse_edit
from apps.clusters.actions.targets import ActionError
from apps.clusters.actions.yaml_lines import error_line, field_line

TEXT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: -3
  template:
    spec:
      containers:
      - name: web
        image: ""
"""


def test_a_syntax_error_is_marked_at_the_line_the_bounded_loader_found():
    with pytest.raises(ActionError) as refused:
        parse_edit("a: 1\nb: [2\nc: 3\n", target=None, resource_version="1")
    assert refused.value.line == 3
    assert error_line("a: 1\nb: [2\nc: 3\n", str(refused.value), refused.value.line) == 3


def test_a_field_kubernetes_names_is_found_below_its_parents():
    assert field_line(TEXT, "spec.replicas") == 6
    assert field_line(TEXT, "spec.template.spec.containers[0].image") == 11
    assert field_line(TEXT, "metadata.name") == 4
    error = 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -3: must be greater than or equal to 0'
    assert error_line(TEXT, error) == 6
    assert error_line(TEXT, "the cluster could not be reached") is None
