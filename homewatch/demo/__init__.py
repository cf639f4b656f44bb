"""``homewatch demo``: embedded PostgreSQL, a broker, the gateway and simulated homes on one machine.

Every home runs the real edge agent against Bluetooth peripherals emulated with Bumble; the patients
and their readings are SYNTHETIC (``models.cohort``) and labelled so everywhere.
"""
