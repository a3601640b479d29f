"""The whole client as one pure machine: connection, reconnect policy, ask correlation, health."""
