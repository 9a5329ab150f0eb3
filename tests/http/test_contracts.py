"""Route contracts (http/contracts.py): each route reads exactly the query parameters its document lists.

The routes' parsing reads parameters through their declarations (api/jsonapi.py, chec/wire.py),
and /openapi.json is written from the same declarations. These tests hold the two together:
every operation of the document is called as the hostile-input suite calls it (a valid request,
real credentials and ids), and the parameters its route looked up must be the ones the document
lists (locale aside: accepted on every native route and read by none). A face that reads the
query string around its contract, or a route with no contract, fails here too.
"""

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from freshcom_customers.api import jsonapi
from freshcom_customers.http import contracts, openapi
from tests import test_hostile_inputs as hostile

# The hostile-input suite's fixtures: real credentials, live tokens and a guest customer.
credentials = hostile.credentials
context = hostile.context

PACKAGE = Path(contracts.__file__).resolve().parent.parent
FACES = ("api", "chec", "oauth2")


@pytest.fixture
def looked_up(monkeypatch) -> set:
    """The names of the query parameters the current request's route looked up in its contract."""
    names: set[str] = set()
    original = contracts.Contract.param

    def param(self, name):
        names.add(name)
        return original(self, name)

    monkeypatch.setattr(contracts.Contract, "param", param)
    return names


def _endpoint(app, call: hostile.Call) -> str:
    return app.url_map.bind("localhost").match(call.path, method=call.method)[0]


def _listed(description: str, pattern: str) -> list[str]:
    """The values a parameter's description lists (include, sort)."""
    match = re.fullmatch(pattern, description)
    assert match, description
    return match["values"].split(", ")


def test_each_route_reads_the_query_parameters_its_document_lists(app, client, session, context, looked_up):
    run = hostile.Run(client, session)
    for operation in hostile.operations_of(client.get("/openapi.json").get_json()):
        documented = {parameter["name"] for parameter in operation.query_parameters()}
        for base in hostile.bases_of(operation, context):
            call = hostile.base_call(operation, base, (operation.body_schemas() or [None])[0], context)
            declared = contracts.of(app.view_functions[_endpoint(app, call)])
            assert documented == {param.name for param in declared.query}, operation.label
            looked_up.clear()
            response = run.send(operation, call)
            assert 200 <= response.status_code < 300, (operation.label, response.get_data()[:300])
            ignored = {param.name for param in declared.query if param.ignored}
            assert looked_up == documented - ignored, operation.label


def test_include_sort_and_filter_values_the_document_does_not_list_are_refused(client, session, context):
    run = hostile.Run(client, session)
    for operation in hostile.operations_of(client.get("/openapi.json").get_json()):
        parameters = {parameter["name"]: parameter for parameter in operation.query_parameters()}
        call = hostile.base_call(operation, hostile.bases_of(operation, context)[0], None, context)
        cases = []
        if "include" in parameters:
            listed = _listed(parameters["include"]["description"], r"Comma-separated: (?P<values>.+)\.")
            cases += [({"include": ",".join(listed)}, 200), ({"include": "undocumented"}, 400)]
        if "sort" in parameters:
            description = parameters["sort"]["description"]
            listed = _listed(description, r"-insertedAt \(default\), (?P<values>.+); comma-separated\.")
            cases += [({"sort": f"-{value}"}, 200) for value in listed] + [({"sort": "undocumented"}, 400)]
        if any(name.startswith("filter[") for name in parameters):
            cases.append(({"filter[undocumented]": "x"}, 400))
        for query, status in cases:
            response = run.send(operation, replace(call, query={**call.query, **query}))
            assert response.status_code == status, (operation.label, query, response.get_json())


def test_faces_read_the_query_string_only_through_their_contracts():
    """request.args in a face would read a parameter no document lists: contracts.arg reads declared ones."""
    found = []
    for face in FACES:
        for path in sorted((PACKAGE / face).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if _reads_query(node):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


def _reads_query(node: ast.AST) -> bool:
    """Whether node is request.args or request.values."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr in ("args", "values")
        and isinstance(node.value, ast.Name)
        and node.value.id == "request"
    )


def _app_with(view) -> Flask:
    app = Flask(__name__)
    app.config["CHEC_URL_PREFIX"] = "/chec/v1"
    app.add_url_rule("/things", view_func=view)
    return app


def test_a_route_that_reads_a_parameter_it_does_not_declare_is_a_bug():
    @jsonapi.contract("Things", tag="Tests", responses={200: None}, include=("user",))
    def things():
        return {}

    with _app_with(things).test_request_context("/things?include=user&code=1"):
        assert jsonapi.include_params() == {"user"}
        with pytest.raises(contracts.Undeclared):
            contracts.arg("code")
        with pytest.raises(contracts.Undeclared):
            jsonapi.sort_params()
        with pytest.raises(contracts.Undeclared):
            jsonapi.filter_params()
        with pytest.raises(contracts.Undeclared):
            jsonapi.load()
    with _app_with(things).test_request_context("/things"):  # no query string: still a bug
        assert jsonapi.include_params() == set()
        with pytest.raises(contracts.Undeclared):
            contracts.arg("code")


def test_a_route_without_a_contract_cannot_be_documented():
    def things():
        return {}

    app = _app_with(things)
    with pytest.raises(LookupError, match="things"):
        openapi.build(app)
    with app.test_request_context("/things"), pytest.raises(contracts.Undeclared):
        contracts.current()
