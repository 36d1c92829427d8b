"""A legacy job, as found in the wild: one token fetched at the top, used for ever.

Run by tests/test_install.py in a subprocess against FakeCriteo. With LEGACY_UPGRADED=1 the
two-line upgrade below is switched on. The test drives it: each line on stdin is one more
API call, made after the test has moved FakeCriteo's clock on.
"""

import os
import sys

import requests

if os.environ.get("LEGACY_UPGRADED") == "1":
    import requests_criteo  # the two-line change, 1/2

    requests_criteo.install()  # the two-line change, 2/2

TOKEN_URL = os.environ["CRITEO_TOKEN_URL"]
API = os.environ["CRITEO_API"]

answer = requests.post(
    TOKEN_URL,
    data={
        "grant_type": "client_credentials",
        "client_id": os.environ["CRITEO_CLIENT_ID"],
        "client_secret": os.environ["CRITEO_CLIENT_SECRET"],
    },
    timeout=10,
)
answer.raise_for_status()
headers = {"Authorization": "Bearer " + answer.json()["access_token"]}

for _ in sys.stdin:
    r = requests.get(f"{API}/2025-10/retail-media/me", headers=headers, timeout=10)
    print(r.status_code, flush=True)
    if r.status_code != 200:
        sys.exit(1)
