"""Storage adapters (SQLAlchemy 2): the only package that imports SQLAlchemy.

Where things are:

* ``db``           ``create_engine_for(url)``, ``Database`` (engine + sessions + options;
                   ``database.unit_of_work`` is the service layer's ``UnitOfWorkFactory``)
* ``tables``       the schema (typed declarative classes); ``migrations/`` + ``migrate`` apply it
* ``unit_of_work`` ``SqlUnitOfWork``, implementing ``gateway.services.ports.UnitOfWork``
* ``repositories`` one class per repository port (rows ⇄ frozen domain dataclasses)
* ``stores``       Asan İmza transactions, sessions (token hash only), the replay cache
* ``message_log``  the append-only log of signed messages: lock-free appends, seals, leaves
* ``seed``         reference data (offices, insurers, e-services) and the demo set
* ``errors``       the error tree; no SQLAlchemy exception leaves this package
"""
