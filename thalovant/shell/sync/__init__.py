"""The blocking facades over the async implementation."""
