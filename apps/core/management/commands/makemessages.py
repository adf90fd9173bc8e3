"""``makemessages`` that also collects ``N_("...")``: the message ids of deferred sentences (apps/core/deferred.py),
stored by background work and translated when a person reads them."""

from django.core.management.commands.makemessages import Command as MakeMessagesCommand


class Command(MakeMessagesCommand):
    xgettext_options = [*MakeMessagesCommand.xgettext_options, "--keyword=N_"]
