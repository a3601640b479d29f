"""The identity model: fields, protocols, MQTT settings, environment and profiles."""
