"""The session machine: one handshake, then sealed messages, over any link."""
