"""Bare Flask: the ceiling of bench/run.py (issue 18). One route that answers a JSON document
with Flask's own jsonify, and nothing else: no logging, headers, proxy fix, database or error
handling of ours. bench/run.py serves it with the same gunicorn settings as the service
(`gunicorn bare_flask:app` from this folder, so the project's gunicorn.conf.py is not read)
and gives it our authorization server metadata's body, so both routes write the same JSON.

A second route, POST /verify, is the password grant's bare counterpart: it reads the password
from the same form and verifies it against BARE_FLASK_PASSWORD_HASH with the service's own
argon2id verify (services/argon2_memory.py, the one the hash-bound limit times), and nothing
else. What it serves under load is what Flask, gunicorn and the hash leave a login on the
machine at hand.
"""

import json
import os
import re

from flask import Flask, abort, jsonify, request

from freshcom_customers.services import argon2_memory

app = Flask(__name__)
DOCUMENT = json.loads(os.environ.get("BARE_FLASK_DOCUMENT", '{"ok": true}'))
PASSWORD_HASH = os.environ.get("BARE_FLASK_PASSWORD_HASH", "")
MEMORY = re.search(r"\$m=(\d+),", PASSWORD_HASH)


@app.get("/json")
def document():
    return jsonify(DOCUMENT)


@app.post("/verify")
def verify():
    if MEMORY is None:
        abort(404)
    # None: the hash could not be verified in the kept block; an error, which the bench counts.
    if argon2_memory.verify(request.form.get("password", ""), PASSWORD_HASH, int(MEMORY[1])) is not True:
        abort(400)
    return jsonify({"ok": True})
