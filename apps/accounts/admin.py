"""Django admin's user pages, with the four-eyes check of role grants (grants.py) on the form: a superuser flag or
a bound group that an approval policy covers is refused with the sentence on the form, before anything is saved
(the model signals would refuse it too, but as an error page). The rest is Django's own user admin."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import ValidationError

from apps.accounts import grants

User = get_user_model()


class GrantCheckedUserForm(UserChangeForm):
    def clean(self):
        cleaned = super().clean()
        why = grants.refusal_for_user_form(
            self.instance, is_superuser=bool(cleaned.get("is_superuser")), groups=list(cleaned.get("groups") or [])
        )
        if why:
            raise ValidationError(why)
        return cleaned


class KubemateUserAdmin(UserAdmin):
    form = GrantCheckedUserForm


admin.site.unregister(User)
admin.site.register(User, KubemateUserAdmin)
