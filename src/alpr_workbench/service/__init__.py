"""The workbench service: the only holder of the keys, behind an authenticated API (#15).

Import the modules you need (``service.app``, ``service.run``...): this package's
``__init__`` stays empty so that importing one part does not import FastAPI or the
dashboard's dependencies. See ``docs/decisions/0003-service-boundary.md``.
"""

__all__: list[str] = []
