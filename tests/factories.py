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

    kind = "core.demo_progress"
    title = factory.Sequence(lambda n: f"Job {n}")
    actor = factory.SubFactory(UserFactory)
