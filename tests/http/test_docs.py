"""GET /docs: Swagger UI served by the service itself, pointed at /openapi.json (http/docs.py)."""

import re

import pytest

from freshcom_customers.http import docs


def test_the_page_loads_only_files_of_this_origin(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert loaded == ["docs/swagger-ui.css", "docs/swagger-ui-bundle.js", "docs/docs.js"]
    assert not [url for url in loaded if "//" in url]  # no CDN, nothing of another origin


def test_the_page_allows_scripts_and_styles_of_this_origin_only(client):
    csp = client.get("/docs").headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp
    assert "style-src 'self' 'unsafe-inline';" in csp
    assert "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "http" not in csp


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [
        ("swagger-ui.css", "text/css"),
        ("swagger-ui-bundle.js", "text/javascript"),
        ("docs.js", "text/javascript"),
    ],
)
def test_each_file_the_page_loads_is_served(client, name, mimetype):
    response = client.get(f"/docs/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert len(response.data) > 100


def test_the_bundle_is_swagger_ui_5_which_renders_openapi_3_1(client):
    bundle = client.get("/docs/swagger-ui-bundle.js").get_data(as_text=True)
    assert '"5.24.2"' in bundle
    assert 'url: "openapi.json"' in client.get("/docs/docs.js").get_data(as_text=True)


@pytest.mark.parametrize("name", ["swagger-initializer.js", "..%2Fdocs.py", "LICENSE", "x"])
def test_nothing_else_is_served(client, name):
    assert client.get(f"/docs/{name}").status_code == 404


def test_every_other_answer_keeps_the_strict_csp(client):
    for path in ("/openapi.json", "/health", "/docs/docs.js"):
        assert (
            client.get(path).headers["Content-Security-Policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        )
    assert set(docs.ASSETS) == {"swagger-ui.css", "swagger-ui-bundle.js", "docs.js"}
