"""Four-eyes approval of changes (issue 20): policies say which actions on which clusters need a second person;
the gate (services.py, registered with apps/core/gates.py) turns such a change into a change request; an approver
applies it as the maker, exactly as recorded. Start with services.py."""
