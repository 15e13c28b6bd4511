"""creditbank: a 1+X vocational-education credit bank on a signed, Merkle-logged ledger."""

__version__ = "0.1.0"
