"""Credentials the world can verify: W3C VC 2.0, Open Badges 3.0, CLR 2.0, status lists.

:mod:`~creditbank.credentials.integrity` signs and verifies Data Integrity proofs
(``eddsa-jcs-2022``, ``eddsa-rdfc-2022``); :mod:`~creditbank.credentials.openbadges`
and :mod:`~creditbank.credentials.clr` build the documents;
:mod:`~creditbank.credentials.status` the Bitstring Status Lists;
:mod:`~creditbank.credentials.export` issues them from the ledger and
:mod:`~creditbank.credentials.verify` checks them offline.
"""
