"""Schemathesis against the live app: every operation of /openapi.json, positive and negative data.

The app is driven in process over WSGI (schemathesis.openapi.from_wsgi), inside the suite's
rolled-back transaction, with real credentials fetched the way clients fetch them: a guest
token from the publishable key, customer and staff tokens from the password grant, a Chec
JWT from a magic link sent by email and exchanged, a confidential client's secret from the
CLI. Each operation gets FUZZ_EXAMPLES cases of each kind (derandomized: the same cases on
every run), and the five checks of issue 7 must pass on every one. Half the positive cases
that have a string also get a hostile piece in one (issue 11, HOSTILE). The total is printed
at the end of the run (tests/conftest.py) and must reach MIN_CASES.

Failures it has found are kept as regression tests beside the code's own tests (see
docs/decisions.md, "OpenAPI document and fuzzing").
"""

import copy
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from freshcom_customers.services.mail import outbox
from tests import callers
from tests.mailbox import DELIVERY_TIMEOUT

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.ignored_auth,
]
# Per operation and per kind of data; hypothesis stops sooner where an operation has fewer inputs.
FUZZ_EXAMPLES = int(os.environ.get("FRESHCOM_FUZZ_EXAMPLES", "100"))
MIN_CASES = int(os.environ.get("FRESHCOM_FUZZ_MIN_CASES", "5000"))
ONLY = os.environ.get("FRESHCOM_FUZZ_ONLY", "")  # a part of "METHOD /path", to fuzz fewer operations
CASES: Counter = Counter()  # by generation mode (and HOSTILE); read by tests/conftest.py's summary

# Issue 11: Schemathesis' strings never hold what PostgreSQL or UTF-8 refuse, so half the positive
# cases get one of these inserted into one string (a body value or a query value): NUL, a
# lone surrogate (only in a JSON body, where it travels as an escape: no other place can carry
# one), bidi and zero-width characters, and a run longer than passlib hashes (4,096). The rest
# of the case stays valid, so the value reaches the services. tests/test_hostile_inputs.py
# sends each of them into every place; this mixes them with everything Schemathesis generates.
HOSTILE = "positive with hostile strings"  # the cases that got one, counted apart in CASES
ENCODABLE_PIECES = st.sampled_from(["\x00", "\u202e", "\u200b", "\ufeff", "x" * 4097])
JSON_PIECES = ENCODABLE_PIECES | st.characters(codec=None, categories=["Cs"])


@pytest.fixture
def credentials(client, auth, account, runner, register, mailbox, session) -> dict:
    """Real credentials and ids of one account, fetched as clients fetch them (tests/callers.py)."""
    return callers.fetch_credentials(client, auth, account, runner, register, mailbox, session)


def api_schema(app, credentials: dict):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    @schema.auth()
    class Credentials:
        """Set the credential the operation's security scheme names, and real ids on positive cases."""

        def get(self, case, ctx):
            return credentials

        def set(self, case, data, ctx):
            operation = case.operation
            method, path = operation.method.upper(), operation.path
            headers = callers.auth_headers(method, path, operation.definition.raw, data)
            case.headers = {**(case.headers or {}), **headers}
            positive = case.meta is None or case.meta.generation.mode.is_positive
            if positive and case.path_parameters and method != "DELETE":
                known = callers.real_ids(path, data)
                case.path_parameters = {
                    **case.path_parameters,
                    **{name: known[name] for name in case.path_parameters if name in known},
                }

    return schema


def string_values(value, path: tuple = ()):
    """The paths of every string in a JSON value."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from string_values(item, (*path, key))


@st.composite
def with_hostile_strings(draw, cases):
    """A case, and what replaces its query or body to put a hostile piece into one of its strings.

    Half the cases that have a string get one. The case itself is left as generated: Schemathesis
    re-validates a changed case with a JSON Schema library that cannot read a lone surrogate, so
    the changed query or body goes to the call instead (its report shows what was sent).
    """
    case = draw(cases)
    places = [("params", (name,)) for name, value in (case.query or {}).items() if isinstance(value, str)]
    json_body = "json" in (case.media_type or "")
    if isinstance(case.body, dict | list):
        places += [("json" if json_body else "data", path) for path in string_values(case.body)]
    if not places or not draw(st.booleans()):
        return case, {}
    where, path = draw(st.sampled_from(places))
    piece = draw(JSON_PIECES if where == "json" else ENCODABLE_PIECES)
    container = copy.deepcopy(case.query if where == "params" else case.body)
    parent = container
    for key in path[:-1]:
        parent = parent[key]
    value = parent[path[-1]]
    position = draw(st.integers(0, len(value)))
    parent[path[-1]] = value[:position] + piece + value[position:]
    return case, {where: container}


def fuzz(operation, mode: GenerationMode) -> None:
    """Run the operation's cases of one kind; raise on the first that fails a check."""
    cases = operation.as_strategy(generation_mode=mode)
    if mode == GenerationMode.POSITIVE:
        cases = with_hostile_strings(cases)
    else:
        cases = cases.map(lambda case: (case, {}))

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=cases)
    def run(drawn):
        case, hostile = drawn
        CASES[HOSTILE if hostile else mode.value] += 1
        case.call_and_validate(checks=CHECKS, **hostile)
        # Mail goes out on a background thread, whose MIME boundaries draw on the global random:
        # let it finish before hypothesis draws the next case (hypothesis forbids that use).
        assert outbox.wait(DELIVERY_TIMEOUT)

    run()


def describe(error: BaseException) -> str:
    """What went wrong, down to the failed checks inside hypothesis's and schemathesis's groups."""
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(describe(inner) for inner in error.exceptions)
    return str(error)


def test_every_operation_passes_the_checks(app, credentials):
    schema = api_schema(app, credentials)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if ONLY not in operation.label:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing in it can be invalid
            except BaseExceptionGroup as error:  # every operation's failures, not only the first's
                failures.append(f"{mode.value} {operation.label}: {describe(error)}")
    assert not failures, "\n\n".join(failures)
    assert sum(CASES.values()) >= MIN_CASES, CASES
    # Half the positive cases with a string to put it in: many have none (no body, no query).
    assert CASES[HOSTILE] * 10 >= CASES[HOSTILE] + CASES[GenerationMode.POSITIVE.value], CASES
