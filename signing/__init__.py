"""XML signing and verification: keys, tokens, certificates, the message-security profile.

A one-way library: it never imports ``gateway`` or ``persistence``.
"""
