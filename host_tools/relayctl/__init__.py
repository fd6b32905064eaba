"""relayctl: build, flash, set up and run Relay from the shipper's laptop."""
