"""The credit bank's domain: accounts, issuers, accreditations, outcomes and their rules.

Pure Python: frozen dataclasses, Decimal, times passed in. No SQLAlchemy,
marshmallow or Click here.
"""
