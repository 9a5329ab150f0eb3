"""Bare Flask: the ceiling of bench/run.py (issue 18). One route that answers a JSON document
with Flask's own jsonify, and nothing else: no logging, headers, proxy fix, database or error
handling of ours. bench/run.py serves it with the same gunicorn settings as the service
(`gunicorn bare_flask:app` from this folder, so the project's gunicorn.conf.py is not read)
and gives it our authorization server metadata's body, so both routes write the same JSON.
"""

import json
import os

from flask import Flask, jsonify

app = Flask(__name__)
DOCUMENT = json.loads(os.environ.get("BARE_FLASK_DOCUMENT", '{"ok": true}'))


@app.get("/json")
def document():
    return jsonify(DOCUMENT)
