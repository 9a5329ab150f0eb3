"""One side of bench/customer_lists.py's side-by-side run: the app of a given source tree,
in-process, timing admin list requests for the process that started it.

    .venv/bin/python bench/list_worker.py SOURCE URI OWNER_EMAIL

SOURCE is a folder holding a freshcom_customers package and its migrations (this project, or
an older commit of it unpacked); only that package is imported, so two workers can time two
versions of the code against the same database. The worker takes the owner's token through
the password grant, prints one JSON line when ready, then answers each line of JSON it reads,
{"path": ..., "query": {...}, "requests": n, "warm": n}, with {"ms": [...], "meta": {...}}:
the milliseconds of n requests, after `warm` untimed ones, and the first response's meta.
"""

import json
import logging
import sys
import time


def main():
    source, uri, owner = sys.argv[1:4]
    sys.path.insert(0, source)
    import freshcom_customers
    from freshcom_customers.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "PASSWORD_HASH_PARAMS": "m=1024,t=1,p=1"})
    logging.disable(logging.INFO)  # the request lines
    client = app.test_client()
    login = {"grant_type": "password", "username": owner, "password": sys.stdin.readline().strip()}
    token = client.post("/v1/token", data=login).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    _answer({"ready": True, "package": freshcom_customers.__file__})
    for line in sys.stdin:
        ask = json.loads(line)

        def call(ask=ask):
            return client.get(ask["path"], query_string=ask["query"], headers=headers)

        response = call()
        if response.status_code != 200:
            _answer({"error": f"{response.status_code}: {response.get_data(as_text=True)[:500]}"})
            continue
        for _ in range(ask["warm"]):
            call()
        times = []
        for _ in range(ask["requests"]):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        _answer({"ms": times, "meta": (response.get_json() or {}).get("meta", {})})


def _answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
