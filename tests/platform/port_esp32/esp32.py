# Stand-in for the ESP32 port's own module: its presence tells relay.platform.wifi.radio() "esp32".
