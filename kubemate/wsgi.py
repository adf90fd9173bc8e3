"""WSGI entry point (gunicorn kubemate.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from kubemate.startup import require_database

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubemate.settings")

application = get_wsgi_application()
require_database()
