"""What migrations that add a capability to the built-in roles share (the loader skips modules named ``_*``)."""


def grant(apps, code: str, roles: tuple[str, ...]) -> None:
    """Add ``code`` to the built-in roles named ``roles`` that lack it."""
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.filter(slug__in=roles, builtin=True):
        if code not in role.capabilities:
            role.capabilities = [*role.capabilities, code]
            role.save(update_fields=["capabilities"])


def revoke(apps, code: str) -> None:
    """Take ``code`` out of every role that holds it."""
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.filter(capabilities__contains=[code]):
        role.capabilities = [c for c in role.capabilities if c != code]
        role.save(update_fields=["capabilities"])
