"""Single sign-on through an OpenID Connect provider (settings: kubemate/settings/oidc.py).

Start with ``views.py`` (the two pages), then ``backend.py`` (tokens checked, the account found or made, groups
mirrored) and ``provider.py`` (the one door to the provider: discovery, keys, token and userinfo endpoints).
"""
