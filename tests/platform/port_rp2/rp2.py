# Stand-in for the rp2 port's own module: its presence tells relay.platform.wifi.radio() "cyw43" (Pico W).
