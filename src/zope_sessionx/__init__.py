"""Client identification and sessions for Zope 3 style applications.

A drop-in replacement for ``zope.session``: see `zope_sessionx.interfaces`,
`zope_sessionx.session` and `zope_sessionx.http`.
"""
