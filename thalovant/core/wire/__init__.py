"""The wire layer: bus and hive messages, JSON codec, bitstrings and base encodings."""
