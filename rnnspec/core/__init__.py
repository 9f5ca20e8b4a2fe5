"""The contracts every other part of rnnspec builds on, framework-free.

- :mod:`rnnspec.core.weights`: the canonical weight layout (names, shapes, files) of every convention;
- :mod:`rnnspec.core.kinds`: :class:`~rnnspec.core.kinds.KindRegistry`, the per-kind tables of
  backends, exporters and importers;
- :mod:`rnnspec.core.backend`: the protocols a backend and a trainer fulfil, with the optional
  capabilities each may declare;
- :mod:`rnnspec.core.registry`: the one table of backends and export formats (and the entry-point group);
- :mod:`rnnspec.core.specs`: a spec from any accepted form, and the spec a built model carries.

It imports only :mod:`rnnspec.lang` and :mod:`rnnspec.util`; backends, runtime, interop, testing and
the CLI import it (import-linter checks the layers, see ``pyproject.toml``).
"""
