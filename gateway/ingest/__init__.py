"""Ingest: what arrives from the hubs over MQTT (and ``POST /fhir``) becomes stored Observations.

``processing`` decides about one message (parse the batch Bundle, check each Observation against the
contract and the hub's enrolment, what to store and what to reject and why); ``storing`` stores those
decisions, shared by the MQTT worker and ``POST /fhir``; ``batch_store`` commits a batch so no message
blocks another; ``mqtt_ingest`` is the worker (MQTT 5 shared subscription, acknowledgement only after the
commit, receipts and errors back to the hub). The SQL is ``gateway.store``'s; scoring is
``gateway.alerts``', announced to it through ``gateway.store.new_data``.
"""
