"""Simulators of the upstream SOAP services, for tests and the embedded demo.

* :mod:`.population` -- the population registry (``wsdl/upstream/population-registry.wsdl``),
  answering from the synthetic people of :mod:`.people`;
* :mod:`.mobile` -- the Asan İmza mobile-signature service (``wsdl/upstream/mobile-signature.wsdl``,
  ETSI TS 102 204 subset) with scripted phone numbers;
* :mod:`.runner` -- :func:`~.runner.start_simulators` serves both on loopback.

Both serve the authored WSDL on ``?wsdl`` (address rewritten); spyne implements the operations.
"""
