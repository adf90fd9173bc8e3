"""Checks, one module per area. Importing ``apps.inspection.catalogue`` registers them all (``base.CATALOGUE``)."""
