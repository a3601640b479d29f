"""Link machines: one per transport (WebSocket, HTTP polling, MQTT), and what they share."""
