"""Container networking on one host: bridges, IPAM, firewall, published ports, embedded DNS.

Plain modules the network actor wires in; `driver.NetworkDriver` is the facade the daemon
calls. See docs/networking.md.
"""
