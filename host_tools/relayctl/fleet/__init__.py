"""The fleet: many relays reporting to one MQTT broker (relayctl fleet).

keys.py derives per-relay credentials from the fleet key; site.py turns a site file's [fleet] into
config.json keys; broker.py renders mosquitto's config; view.py makes the volunteers' table;
watch.py talks to the broker (paho-mqtt).
"""
