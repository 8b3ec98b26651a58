"""The ASGI specification as data: ``asgi.json``, with ``README.md`` generated from it.

In the repository this directory is ``spec/``; installed, it is the package ``sansio_asgi.spec``
(the same files, mapped by ``package-dir`` in pyproject.toml), which
``sansio_asgi.core.schema`` reads through ``importlib.resources``. ``render`` writes the page:
``python -m spec.render`` from the repository root.
"""
