"""Every client default, written once: how an identity and the caller's options become a connection plan."""

from __future__ import annotations

from thalovant._version import __version__

__all__ = ["DEFAULT_USERAGENT"]

#: The user agent the hub sees (and the first half of the authorization token) unless one is given.
DEFAULT_USERAGENT = f"ThalovantPythonSDK/{__version__}"
