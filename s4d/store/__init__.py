"""The storage engine: blocking, synchronous, and free of Twisted imports.

Everything in this package runs in worker threads; :mod:`s4d.engine` is the only
caller and the only place that hands work to threads.
"""
