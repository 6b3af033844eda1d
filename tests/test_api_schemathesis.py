"""schemathesis against the API's own OpenAPI document, over real HTTP:
whatever the document allows, the server answers without a 5xx. (The
operations are driven with hypothesis here: schemathesis's pytest fixture
loader does not run on this pytest.)"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.history import ApiServer, api_server, scenario_url

__all__ = ["api_server", "scenario_url"]


def test_no_input_the_document_allows_gives_a_server_error(api_server: ApiServer) -> None:
    token = api_server.token("schemathesis")
    assert httpx.get(api_server.base + "/openapi.json").status_code == 200
    schema = schemathesis.openapi.from_url(api_server.base + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])

        check()
