"""Framework backends of rnnspec (installed as the package ``rnnspec_backends``).

Each backend is one module (``keras``, ``torch``, ``numpy``) exposing ``BACKEND``. The core
reaches them only through :mod:`rnnspec.runtime.registry`, so importing rnnspec never imports a
framework. This package imports nothing at import time.
"""
