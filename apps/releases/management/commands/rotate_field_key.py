"""manage.py rotate_field_key <cluster> <project> --as <user>: rotate a project's field-encryption key.

Every sealed ConfigMap/Secret field and every release Secret that encrypts in the cluster is sealed again with
the new key version while both versions open, then the old version is retired (releases.services
.rotate_field_key). It acts as, and is audited as, the named user, whose rights the cluster checks.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Project
from apps.releases.services import rotate_field_key


class Command(BaseCommand):
    help = "Rotate a project's field-encryption key, acting as a user."

    def add_arguments(self, parser):
        parser.add_argument("cluster")
        parser.add_argument("project", help="the project's identifier")
        parser.add_argument("--as", dest="username", required=True, help="the user who rotates (audited as them)")

    def handle(self, *args, cluster, project, username, **options):
        actor = get_user_model().objects.filter(username=username, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user named {username}.")
        target = Project.objects.filter(cluster__name=cluster, slug=project).first()
        if target is None:
            raise CommandError(f"No project {project} in cluster {cluster}.")
        key = rotate_field_key(actor=actor, project=target)
        self.stdout.write(f"Project {target.slug} now seals with key version {key.version}; older versions retired.")
