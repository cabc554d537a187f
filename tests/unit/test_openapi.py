"""The OpenAPI document stays in step with the routes the app really registers."""

from __future__ import annotations

from openapi_spec_validator import validate

import app as app_module
from chalicelib.routing import HTTP_METHODS


def _registered_operations() -> set[tuple[str, str]]:
    """(METHOD, path) of every route a handler serves, without the 405 answers and the routes of a driver
    this app does not run (/sim/* under neonize)."""
    found = set()
    for path, methods in app_module.app.routes.items():
        for method, entry in methods.items():
            if not entry.view_name.startswith(("method_not_allowed_", "unavailable_")):
                found.add((method, path))
    return found


def test_document_is_valid_openapi_3_1(client):
    document = client.get("/openapi.json").json_body
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_nothing_else(client):
    document = client.get("/openapi.json").json_body
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == _registered_operations()


def test_every_path_answers_every_method(client):
    # Unsupported methods reach the app (405 envelope) instead of API Gateway's 403.
    for path, methods in app_module.app.routes.items():
        assert set(methods) == set(HTTP_METHODS), path


def test_request_models_are_documented_with_wago_casing(client):
    document = client.get("/openapi.json").json_body
    init = document["paths"]["/session/init"]["post"]
    schema_ref = init["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"Name", "Token", "Os"}
    assert set(schema["required"]) == {"Name", "Token", "Os"}
    assert init["security"] == [{"admintoken": []}]


def test_sim_routes_under_another_driver_say_why_for_every_path_and_method(client):
    from chalicelib.core.settings import get_settings
    from chalicelib.routes import sim

    assert get_settings().whatsapp_driver == "neonize"
    paths = {spec.path for spec in sim.router.specs}
    assert len(paths) >= 5
    for path in paths:
        for method in HTTP_METHODS:
            response = client.request(method, path, headers={"admintoken": "qwert"}, body="{}")
            assert response.status_code == 404, (method, path)
            assert response.json_body == {"code": 404, "success": False, "error": (
                "Not Found: the simulator controls (/sim/*) exist only with WHATSAPP_DRIVER=sim; this gateway runs "
                "the neonize driver")}, (method, path)


def test_each_route_names_the_host_operations_it_sends(client):
    """`x-wago-operations`: a route's declared operations (Router.route(sends=...)), by their registry names;
    every declared operation is one of the registry's own, and every operation in the registry is sent by
    some route (the sim's under the sim driver)."""
    from chalicelib.api import routers
    from chalicelib.core import ops
    from chalicelib.core.settings import get_settings
    from chalicelib.openapi import build_document

    document = client.get("/openapi.json").json_body
    assert document["paths"]["/group/topic"]["post"]["x-wago-operations"] == ["group.topic"]
    assert document["paths"]["/send/text"]["post"]["x-wago-operations"] == ["send_content", "send_text"]
    assert "x-wago-operations" not in document["paths"]["/session/status"]["get"]

    specs = [spec for router in routers(get_settings().model_copy(update={"whatsapp_driver": "sim"}))
             for spec in router.specs]
    for spec in specs:
        for operation in spec.sends:
            assert ops.OPERATIONS.get(operation.name) is operation, (spec.path, operation.name)
    assert {op.name for spec in specs for op in spec.sends} == set(ops.OPERATIONS)
    with_sim = build_document(specs)
    assert with_sim["paths"]["/sim/logout"]["post"]["x-wago-operations"] == ["sim.logout", "sim.unlink"]
    validate(with_sim)


def test_a_route_sending_an_operation_it_does_not_declare_is_a_logged_500(client, monkeypatch):
    """The bus refuses, inside a route, an operation the route does not declare (UndeclaredOperation, the
    router's logged 500), so the document cannot drift from what the route does; outside a route nothing
    is checked."""
    import pytest

    from chalicelib import bus, routing
    from chalicelib.core import ops

    with routing.route_sends([ops.GROUP_TOPIC]), pytest.raises(bus.UndeclaredOperation, match="group.name"):
        bus._wire_args(ops.GROUP_NAME, ops.GroupName(group="1@g.us", name="n"))
    assert bus._wire_args(ops.GROUP_NAME, ops.GroupName(group="1@g.us", name="n"))["name"] == "n"

    client.init("A", "atoken")
    body = {"GroupJID": "120363012345678901@g.us", "Topic": "t"}
    assert client.post("/group/topic", body, headers={"token": "atoken"}).json_body["error"] == "No session"
    monkeypatch.setattr(ops, "GROUP_TOPIC", ops.GROUP_NAME)  # the handler now sends group.name
    answer = client.post("/group/topic", body, headers={"token": "atoken"})
    assert (answer.status_code, answer.json_body["error"]) == (500, "internal server error")
