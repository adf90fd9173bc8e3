"""PostgreSQL going away and coming back (issue 11, tests/faults): a sentence while it is gone, the pages after.

The web process (a real gunicorn) reaches the test database through a relay the test cuts: every open
connection dies and new ones are refused, as when PostgreSQL restarts. Pages answer the "database not
reachable" sentence (503, never the 500 page), /healthz stays 200, /readyz names the database; when the
relay comes back the same session goes on. The seconds to recover are printed.
"""

import time

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.clusters.inventory_rows import build_bank, list_url
from tests.factories import AdminFactory
from tests.faults.proxy import Relay
from tests.helpers import WebProcess, login, session_database_url

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_pages_say_the_database_is_unreachable_and_recover_when_it_returns():
    bank = build_bank()
    session = login(Client(), AdminFactory(), recent_auth=True).cookies[settings.SESSION_COOKIE_NAME].value
    db = settings.DATABASES["default"]
    relay = Relay(db["HOST"], int(db["PORT"]))
    relay.up()
    url = session_database_url().replace(f"@{db['HOST']}:{db['PORT']}/", f"@127.0.0.1:{relay.port}/")
    urls = {
        "dashboard": reverse("dashboard"),
        "clusters": reverse("clusters:cluster_list"),
        "pods": list_url(bank["cluster"], "pods"),
        "releases": reverse("releases:release_list"),
        "audit": reverse("accounts:audit_list"),
    }
    try:
        with WebProcess(DATABASE_URL=url) as web:
            browser = requests.Session()
            browser.cookies.set(settings.SESSION_COOKIE_NAME, session)

            def answers():
                return {name: browser.get(web.url + path, timeout=30) for name, path in urls.items()}

            assert {name: r.status_code for name, r in answers().items()} == dict.fromkeys(urls, 200)

            relay.down()
            down = answers()
            healthz = browser.get(web.url + "/healthz", timeout=10)
            readyz = requests.get(web.url + "/readyz", timeout=30)

            relay.up()
            started = time.monotonic()
            back = answers()
            while any(r.status_code != 200 for r in back.values()) and time.monotonic() - started < 30:
                time.sleep(0.5)
                back = answers()
            recovered = time.monotonic() - started
    finally:
        relay.down()

    print(f"\nPostgreSQL back: pages answered again after {recovered:.1f} s")
    assert {name: r.status_code for name, r in down.items()} == dict.fromkeys(urls, 503)
    assert all("cannot reach its database" in r.text for r in down.values())
    assert healthz.status_code == 200
    assert readyz.status_code == 503
    assert readyz.json()["database"] == "unreachable"
    assert {name: r.status_code for name, r in back.items()} == dict.fromkeys(urls, 200)
