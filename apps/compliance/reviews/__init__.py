"""Access reviews (issue 20): each quarter, per project, a report of who holds which role; the reviewer confirms or
revokes each line. Start with services.py."""
