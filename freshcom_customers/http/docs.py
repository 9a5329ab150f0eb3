"""GET /docs: the OpenAPI document rendered for people, with no CDN.

Swagger UI 5 (it renders OpenAPI 3.1) comes from the pinned ``swagger-ui-py`` package, whose
wheel carries its built files; this module serves three of them, and a few lines of our own
that point it at /openapi.json, from this origin. The page's CSP allows scripts and styles
from this origin only (inline style attributes aside: Swagger UI sets them), so nothing is
fetched from elsewhere, and nothing works offline any worse than online.
"""

import importlib.util
from pathlib import Path

from flask import Blueprint, Response, abort

from freshcom_customers.http import headers
from freshcom_customers.http.contracts import ERRORS, STRING, Shape, contract

bp = Blueprint("docs", __name__)

_SWAGGER_UI = Path(importlib.util.find_spec("swagger_ui").submodule_search_locations[0]) / "static"
# The files the page loads, by the name it loads them under: nothing else is served.
ASSETS = {
    "swagger-ui.css": (_SWAGGER_UI / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (_SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript"),
    "docs.js": (Path(__file__).parent / "static" / "docs.js", "text/javascript"),
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>freshcom_customers API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/docs.js"></script>
</body>
</html>
"""
HTML = Shape("", STRING, "text/html")
ASSET = Shape("", STRING, "text/javascript")


@bp.get("/docs")
@contract("This document, rendered for people", tag="Discovery", responses={200: HTML})
@headers.override({"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})
def page():
    return Response(DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/<name>")
@contract("A script or style of the rendered document", tag="Discovery", responses={200: ASSET, 404: ERRORS})
def asset(name: str):
    if name not in ASSETS:
        abort(404)
    path, mimetype = ASSETS[name]
    # The files change only with the pinned package, which a deploy restarts the service for.
    return Response(path.read_bytes(), mimetype=mimetype, headers={"Cache-Control": "public, max-age=3600"})
