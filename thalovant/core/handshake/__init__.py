"""Handshakes and secure channels: v1 (hub 4.x, password or pre-shared key) and v3 (hub 5.x, Noise)."""
