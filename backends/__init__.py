"""Framework backends of rnnspec (installed as the package ``rnnspec_backends``).

One subpackage per framework: ``keras``, ``torch`` and ``numpy`` (each with a ``model`` module
defining ``BACKEND``), and ``onnx`` (export only). The core reaches them only through
:mod:`rnnspec.core.registry`, so importing rnnspec never imports a framework. This package
imports nothing at import time.
"""
