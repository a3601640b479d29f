"""Bus-level values: events, replies, refusals, outbound messages and rich display."""
