"""A council adapter: serves familycontext.v1.AdapterService from the council's own warehouse.

Ports and adapters: :class:`~familyctx_adapter.source.WarehouseSource` is the port,
:class:`~familyctx_adapter.sql_source.SqlWarehouseSource` the SQLAlchemy implementation;
:func:`~familyctx_adapter.server.build_server` is the composition root.
"""

from familyctx_adapter.settings import AdapterSettings, load_settings

__all__ = ["AdapterSettings", "load_settings"]
