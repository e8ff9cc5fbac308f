"""Typed views of the metadata environment's named sub-databases, one class each.

A :class:`~s4d.store.txn.MetaTxn` owns one LMDB transaction and exposes one
view per sub-database as an attribute (``t.buckets``, ``t.ns``, ``t.versions``,
``t.chunks``, ...). Views never commit or abort.
"""
