"""Which face answers a path's errors, and which werkzeug errors keep their status (http/errors.py)."""

from werkzeug.exceptions import InternalServerError, MethodNotAllowed, NotFound, ServiceUnavailable

from freshcom_customers.http.errors import Faces, passed_through, under


def test_a_path_is_under_its_prefix_and_nothing_that_only_starts_alike():
    assert under("/v1/token", "/v1/token")
    assert under("/v1/token/revoke", "/v1/token")
    assert under("/chec/v1/x", "/chec/v1/")
    assert not under("/v1/tokens", "/v1/token")


def test_the_longest_prefix_answers_and_others_get_the_default():
    faces = Faces([("/v1", "native"), ("/v1/token", "oauth"), ("/chec/v1", "chec")], default="default")
    assert faces.renderer("/v1/token/introspect") == "oauth"
    assert faces.renderer("/v1/customers") == "native"
    assert faces.renderer("/chec/v1/customers/x") == "chec"
    assert faces.renderer("/health") == "default"


def test_client_errors_and_503_keep_their_status_and_the_headers_clients_need(app):
    with app.test_request_context():
        allowed = passed_through(MethodNotAllowed(valid_methods=["GET"]))
        down = passed_through(ServiceUnavailable("down", retry_after=5))
        assert (allowed.status, allowed.headers) == (405, [("Allow", "GET")])
        assert (down.status, down.description, down.headers) == (503, "down", [("Retry-After", "5")])
        assert passed_through(NotFound()).name == "Not Found"
        assert passed_through(InternalServerError()) is None
        assert passed_through(ValueError("a bug")) is None
