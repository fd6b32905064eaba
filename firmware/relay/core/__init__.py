"""The seam between what a session decides and how bytes move: session admission and ends, routing and
the one dial loop, the one place that picks a pump. Sessions and services ask these; they never import
relay.server.
"""
