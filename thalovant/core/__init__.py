"""The pure, sans-IO core of thalovant.

Nothing in this package does IO, reads a clock, draws randomness, starts a
thread or logs. Time arrives as ``now``; timers leave as ``deadline``;
randomness is an injected ``entropy(n) -> bytes`` callable. These modules
carry no compatibility promise: the public API is ``thalovant`` itself.
"""
