"""Open redirects and forged identity: where the console sends a browser next, and who it thinks is asking.

Every view that follows a ``next`` parameter (sign-in, sign-out, language switch, password confirmation)
is given the spellings browsers turn into another site; each must land on a path of this site. Headers a
proxy or an attacker may add to claim an identity (remote-user, forwarded-user, Kubernetes impersonation,
basic and bearer authorization) must change nothing: anonymous stays anonymous, a plain user stays plain.
"""

from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, AdminFactory, UserFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

ELSEWHERE = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "\t//evil.example",
    " //evil.example",
    "https:evil.example",
    "http:/\\/evil.example",
    "https://testserver@evil.example/",
    "https://evil.example#@testserver/",
    "https://evil.example\\@testserver/",
    "https://evil.example?@testserver/",
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "https://evil。example",
    "https://evil%2Eexample",
    "ftp://evil.example",
]


def lands_here(location: str) -> bool:
    """A browser following ``location`` from a page of this site stays on it.

    Browsers drop tabs and newlines and read a backslash as a slash in http(s) addresses; the rest is
    ordinary URL resolution against the page the redirect came from.
    """
    cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "").strip().replace("\\", "/")
    resolved = urlsplit(urljoin("http://testserver/login/", cleaned))
    return resolved.scheme in ("http", "https") and resolved.netloc == "testserver"


@pytest.mark.parametrize("target", ELSEWHERE)
def test_sign_in_never_sends_the_browser_elsewhere(target):
    user = UserFactory()
    response = Client().post(reverse("login"), {"username": user.username, "password": PASSWORD, "next": target})

    assert response.status_code == 302
    assert lands_here(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", ELSEWHERE)
def test_the_language_switch_never_sends_the_browser_elsewhere(target):
    response = Client().post(reverse("set_language"), {"language": "zh-hans", "next": target})

    assert response.status_code == 302
    assert lands_here(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", ELSEWHERE)
def test_password_confirmation_never_sends_the_browser_elsewhere(client, target):
    user = UserFactory()
    login(client, user)

    response = client.post(f"{reverse('security:reauth')}?next=x", {"password": PASSWORD, "next": target})

    assert response.status_code == 302
    assert lands_here(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", ELSEWHERE)
def test_sign_out_never_sends_the_browser_elsewhere(client, target):
    login(client, UserFactory())

    response = client.post(reverse("logout"), {"next": target})

    assert response.status_code == 302
    assert lands_here(response["Location"]), response["Location"]


FORGED = [
    {"REMOTE_USER": "admin"},
    {"HTTP_REMOTE_USER": "admin"},
    {"HTTP_X_REMOTE_USER": "admin"},
    {"HTTP_X_FORWARDED_USER": "admin"},
    {"HTTP_X_AUTH_REQUEST_USER": "admin"},
    {"HTTP_X_WEBAUTH_USER": "admin"},
    {"HTTP_IMPERSONATE_USER": "admin"},
    {"HTTP_IMPERSONATE_USER": "system:admin", "HTTP_IMPERSONATE_GROUP": "system:masters"},
    {"HTTP_AUTHORIZATION": "Basic YWRtaW46YWRtaW4="},
    {"HTTP_AUTHORIZATION": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."},
    {"HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_REAL_IP": "127.0.0.1"},
    {"HTTP_COOKIE": "kubemate_session=forged; sessionid=forged"},
]


@pytest.fixture
def admin_named_admin(db):
    return AdminFactory(username="admin")


@pytest.mark.parametrize("headers", FORGED, ids=lambda h: ",".join(h))
def test_forged_identity_headers_leave_an_anonymous_visitor_anonymous(admin_named_admin, headers):
    response = Client().get(reverse("accounts:user_list"), **headers)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("headers", FORGED, ids=lambda h: ",".join(h))
def test_forged_identity_headers_leave_a_plain_user_plain(client, admin_named_admin, headers):
    plain = UserFactory(username="plain")
    login(client, plain)
    headers = {key: value for key, value in headers.items() if key != "HTTP_COOKIE"}

    listing = client.get(reverse("accounts:user_list"), **headers)
    admin_site = client.get(reverse("admin:index"), **headers)

    assert listing.status_code in (403, 404)
    assert admin_site.status_code == 302
