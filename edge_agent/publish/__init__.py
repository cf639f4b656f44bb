"""Publishing the outbox to MQTT."""

from edge_agent.publish.mqtt_publisher import MqttPublisher, PublisherStats

__all__ = ["MqttPublisher", "PublisherStats"]
