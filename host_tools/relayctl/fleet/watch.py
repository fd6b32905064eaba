"""The volunteers' side of the broker, with paho-mqtt: read every relay's retained topics, send a
signed command. Blocking calls with a deadline each; the CLI runs them.
"""

import ssl
import threading
import time

from relayctl.errors import CliError
from relayctl.fleet import view

_CONNACK = {1: "wrong MQTT version", 2: "client id refused", 3: "broker unavailable", 4: "bad user name or password",
            5: "not authorised"}


class Watch:
    """Subscribes to PREFIX/+/status and PREFIX/+/report; .relays fills as messages come."""

    def __init__(self, host, port, user=None, password=None, prefix="relay", ca_file=None, client_id=None):
        import paho.mqtt.client as mqtt

        self.prefix = prefix
        self.relays = {}
        self.lock = threading.Lock()
        self.last_msg = time.monotonic()
        self.connected = threading.Event()
        self.error = None
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv311)
        if user:
            c.username_pw_set(user, password)
        if ca_file:
            try:
                c.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError) as e:
                raise CliError(f"cannot load the broker's CA certificate {ca_file} ({getattr(e, 'strerror', None) or e}); "
                               "give its PEM file with --ca (or the site file's fleet.ca_file, relative to the site file)", 2)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        self.client = c
        self.host, self.port = host, port

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self.error = str(reason)
            self.connected.set()
            return
        client.subscribe([(f"{self.prefix}/+/status", 1), (f"{self.prefix}/+/report", 1)])
        with self.lock:
            self.last_msg = time.monotonic()  # settle() counts the retained messages' quiet from here
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        if len(parts) < 3 or parts[-1] not in ("status", "report"):
            return
        name = parts[-2]
        with self.lock:
            r = self.relays.get(name) or self.relays.setdefault(name, view.Relay(name))
            r.take(parts[-1], msg.payload, not msg.retain, time.time())
            self.last_msg = time.monotonic()

    def start(self, timeout=10.0):
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except (OSError, ssl.SSLError) as e:
            raise CliError(f"cannot reach the broker at {self.host}:{self.port}: {e}; is mosquitto running "
                           "there, and is the port (and --ca for TLS) right?")
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.stop()
            raise CliError(f"the broker at {self.host}:{self.port} did not answer in {timeout:.0f} s; "
                           "is it an MQTT port (TLS needs --ca)?")
        if self.error:
            self.stop()
            raise CliError(f"the broker refused the login: {self.error}; check --user and --password "
                           "(or the site file's fleet.key)")

    def settle(self, quiet=0.5, limit=5.0):
        """Wait until the retained messages stopped coming (quiet seconds without one), at most limit."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            with self.lock:
                idle = time.monotonic() - self.last_msg
            if idle >= quiet:
                return
            time.sleep(0.05)

    def snapshot(self):
        with self.lock:
            return dict(self.relays)

    def publish(self, topic, payload, retain=True, timeout=10.0):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise CliError(f"the broker did not take the message on {topic} in {timeout:.0f} s")

    def stop(self):
        self.client.loop_stop()
        try:
            self.client.disconnect()
        except OSError:
            pass
