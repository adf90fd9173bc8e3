import factory
from django.contrib.auth import get_user_model

from apps.core.models import Job

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"operator{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@bank.example")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    kind = "tests.stepping_job"
    title = factory.Sequence(lambda n: f"Job {n}")
    actor = factory.SubFactory(UserFactory)


class ClusterFactory(factory.django.DjangoModelFactory):
    """A registered cluster row; its credentials point nowhere (tests that talk to a cluster use the sandbox)."""

    class Meta:
        model = "clusters.Cluster"
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"cluster-{n}")
    api_server = "https://127.0.0.1:1"
    kubeconfig_encrypted = factory.LazyFunction(lambda: __import__("apps.core.crypto", fromlist=["x"]).encrypt("{}"))


class ResourceFactory(factory.django.DjangoModelFactory):
    """An inventory row built the way the sync builds it, from a Kubernetes object dict (``obj``)."""

    class Meta:
        model = "clusters.Resource"

    cluster = factory.SubFactory(ClusterFactory)

    @classmethod
    def _create(cls, model_class, *args, obj=None, **kwargs):
        import uuid

        from apps.clusters.inventory.summaries import row_fields

        kind = kwargs.pop("kind", "Pod")
        obj = obj or {}
        meta = obj.setdefault("metadata", {})
        meta.setdefault("name", kwargs.pop("name", f"{kind.lower()}-{uuid.uuid4().hex[:6]}"))
        namespace = kwargs.pop("namespace", "default")
        if namespace:
            meta.setdefault("namespace", namespace)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("resourceVersion", "1")
        meta.setdefault("creationTimestamp", "2026-11-27T08:00:00Z")
        return model_class.objects.create(**{**row_fields(kind, obj), **kwargs})
