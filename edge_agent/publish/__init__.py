"""Publishing the outbox to MQTT: batch Bundles at QoS 1, rows deleted on the gateway's receipt.

``mqtt_publisher`` (:class:`~edge_agent.publish.mqtt_publisher.MqttPublisher`) drains the outbox in
order, keeps the hub's retained status and Last Will, waits for the gateway's receipts and hands the
server's retained config on (docs/hub.md, docs/outbox.md). Storing readings is the outbox's business,
judging a config message ``edge_agent.remote_config``'s.
"""

from edge_agent.publish.mqtt_publisher import MqttPublisher, PublisherStats

__all__ = ["MqttPublisher", "PublisherStats"]
