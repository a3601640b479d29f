"""One IO driver per transport: WebSocket, HTTP/1.1 and MQTT."""
