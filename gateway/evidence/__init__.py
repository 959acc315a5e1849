"""Evidence that outlives us: sealing the message log, verifying it, and exporting what a third
party needs to check one message with independent tools (``docs/message-log.md``).

* ``merkle``  what is hashed: the leaf of an entry, the tree head of a batch, inclusion proofs
* ``tsa``     RFC 3161 time-stamping: the client and the token check (asn1crypto, cryptography)
* ``seal``    the seal document and the sealer (one at a time across processes, in background)
* ``verify``  ``dsmf-gateway log verify``: entries, seals, chain, TSA tokens, tail anchor
* ``export``  the evidence zip for one message or one application, with its README.txt
"""
